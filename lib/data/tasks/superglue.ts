// SuperGLUE readers for the official JSON Lines files: one JSON object per line. COPA, MultiRC
// and ReCoRD expand one record into several rows that are scored together as a group.
import { excerpt, quote } from '../../util/excerpt';
import { bad, defineTask, isTestSplit, labelIndex, readLines, readRows, splitFile } from './read';
import type { TaskExample, TaskSpec } from './types';

type Json = Record<string, unknown>;
interface Where {
  file: string;
  line: number;
  /** False for test splits, whose records have no labels. */
  labelled: boolean;
}
type RecordParser = (record: Json, where: Where) => TaskExample[];

const SPLITS = { train: 'train.jsonl', val: 'val.jsonl', test: 'test.jsonl' };
const BOOLEAN = ['false', 'true'];
const BINARY = ['0', '1'];

function asObject(value: unknown, what: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad(`${what} is not a JSON object`);
  return value as Json;
}

// Field accessors: `at` is the path of `o` in the record (e.g. 'qas[2].'), for messages.
function field(o: Json, key: string, at: string): unknown {
  if (o[key] === undefined) bad(`missing field "${at}${key}"`);
  return o[key];
}

function text(o: Json, key: string, at = ''): string {
  const value = field(o, key, at);
  if (typeof value !== 'string') bad(`field "${at}${key}" is not a string`);
  return value;
}

function integer(o: Json, key: string, at = ''): number {
  const value = field(o, key, at);
  if (typeof value !== 'number' || !Number.isInteger(value)) bad(`field "${at}${key}" is not an integer`);
  return value;
}

function list(o: Json, key: string, at = ''): Json[] {
  const value = field(o, key, at);
  if (!Array.isArray(value)) bad(`field "${at}${key}" is not a list`);
  return value.map((item, i) => asObject(item, `field "${at}${key}[${i}]"`));
}

/** The class index of o.label; undefined in test splits, required elsewhere. */
function label(o: Json, raw: readonly string[], where: Where, at = ''): number | undefined {
  if (o.label === undefined && !where.labelled) return undefined;
  return labelIndex(field(o, 'label', at), raw);
}

function id(o: Json): string | undefined {
  return typeof o.idx === 'number' || typeof o.idx === 'string' ? String(o.idx) : undefined;
}

/** BoolQ, CB, RTE, WiC: one row per record; the segments are the fields of the same names. */
function plain(fields: readonly string[], raw: readonly string[]): RecordParser {
  return (record, where) => [
    {
      segments: fields.map((f) => text(record, f)),
      label: label(record, raw, where),
      source: { file: where.file, line: where.line, id: id(record) },
    },
  ];
}

/** COPA: one row per choice, label 1 for the right one (the record's label is 0 or 1). */
const copa: RecordParser = (record, where) => {
  const premise = text(record, 'premise');
  const question = text(record, 'question');
  if (question !== 'cause' && question !== 'effect') bad(`field "question" is ${quote(question, 40)}, not "cause" or "effect"`);
  const choices = [text(record, 'choice1'), text(record, 'choice2')];
  const right = label(record, BINARY, where);
  const group = String(integer(record, 'idx'));
  return choices.map((choice, k) => ({
    segments: [premise, question, choice],
    label: right === undefined ? undefined : Number(right === k),
    group,
    source: { file: where.file, line: where.line, id: group },
  }));
};

/** MultiRC's text carries HTML sentence markup; REFERENCE §3 replaces it by spaces. */
function clean(s: string): string {
  return s.replace(/<br\s*\/?>|<\/?b>/gi, ' ');
}

/** MultiRC: one row per answer option, grouped by (paragraph idx, question idx). */
const multirc: RecordParser = (record, where) => {
  const paragraphIdx = integer(record, 'idx');
  const passage = asObject(field(record, 'passage', ''), 'field "passage"');
  const paragraph = clean(text(passage, 'text', 'passage.'));
  const rows: TaskExample[] = [];
  list(passage, 'questions', 'passage.').forEach((q, qi) => {
    const at = `passage.questions[${qi}].`;
    const question = clean(text(q, 'question', at));
    const group = `${paragraphIdx}/${integer(q, 'idx', at)}`;
    list(q, 'answers', at).forEach((a, ai) => {
      const aAt = `${at}answers[${ai}].`;
      rows.push({
        segments: [question, clean(text(a, 'text', aAt)), paragraph],
        label: label(a, BINARY, where, aAt),
        group,
        source: { file: where.file, line: where.line, id: `${group}/${integer(a, 'idx', aAt)}` },
      });
    });
  });
  return rows;
};

/** The text of a character span whose `end` is inclusive, as ReCoRD's entities and answers are. */
function span(passage: string, o: Json, at: string): string {
  const start = integer(o, 'start', at);
  const end = integer(o, 'end', at);
  if (start < 0 || end < start || end >= passage.length) bad(`span ${at}[${start}, ${end}] is outside the passage (${passage.length} characters)`);
  return passage.slice(start, end + 1);
}

/** ReCoRD: one row per distinct candidate entity of the passage, for each query. */
const record: RecordParser = (rec, where) => {
  const passageIdx = integer(rec, 'idx');
  const passage = asObject(field(rec, 'passage', ''), 'field "passage"');
  const passageText = text(passage, 'text', 'passage.');
  // The same entity is often marked at several places; it is one candidate.
  const entities = [...new Set(list(passage, 'entities', 'passage.').map((e, i) => span(passageText, e, `passage.entities[${i}].`)))];
  const rows: TaskExample[] = [];
  list(rec, 'qas').forEach((qa, qi) => {
    const at = `qas[${qi}].`;
    const query = text(qa, 'query', at);
    const group = `${passageIdx}/${integer(qa, 'idx', at)}`;
    const answers =
      qa.answers === undefined && !where.labelled
        ? undefined
        : list(qa, 'answers', at).map((a, ai) => (typeof a.text === 'string' ? a.text : span(passageText, a, `${at}answers[${ai}].`)));
    for (const entity of entities) {
      rows.push({
        segments: [entity, query, passageText],
        label: answers === undefined ? undefined : Number(answers.includes(entity)),
        group,
        entity,
        answers,
        source: { file: where.file, line: where.line, id: group },
      });
    }
  });
  return rows;
};

type SuperGlueFields = Omit<Parameters<typeof defineTask>[0], 'benchmark' | 'splits' | 'evalSplit' | 'read'>;

function superglue(fields: SuperGlueFields, parse: RecordParser): TaskSpec {
  return defineTask({
    ...fields,
    benchmark: 'superglue',
    splits: SPLITS,
    evalSplit: 'val',
    read(folder, split, options) {
      const file = splitFile(fields.name, SPLITS, folder, split);
      const labelled = !isTestSplit(split);
      return readRows(readLines(file), 0, options, (line, lineNumber) => {
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch (e) {
          bad(`bad JSON: ${excerpt((e as Error).message, 120)}`);
        }
        return parse(asObject(value, 'the line'), { file, line: lineNumber, labelled });
      });
    },
  });
}

/** A one-row-per-record task whose label names are also the label values in the files. */
function plainTask(name: string, folderName: string, segmentNames: string[], labelNames: string[], metrics = ['accuracy']): TaskSpec {
  return superglue({ name, folderName, segmentNames, labelNames, metrics }, plain(segmentNames, labelNames));
}

export const SUPERGLUE_TASKS: TaskSpec[] = [
  plainTask('superglue/boolq', 'superglue/BoolQ', ['question', 'passage'], BOOLEAN),
  plainTask('superglue/cb', 'superglue/CB', ['hypothesis', 'premise'], ['entailment', 'contradiction', 'neutral'], ['accuracy', 'macro_f1']),
  superglue(
    {
      name: 'superglue/copa', folderName: 'superglue/COPA', segmentNames: ['premise', 'question', 'choice'], labelNames: [],
      metrics: ['accuracy'], regression: true, grouped: true,
    },
    copa,
  ),
  superglue(
    {
      name: 'superglue/multirc', folderName: 'superglue/MultiRC', segmentNames: ['question', 'answer', 'paragraph'],
      labelNames: BOOLEAN, metrics: ['exact_match', 'f1a'], grouped: true,
    },
    multirc,
  ),
  superglue(
    {
      name: 'superglue/record', folderName: 'superglue/ReCoRD', segmentNames: ['entity', 'query', 'passage'], labelNames: [],
      metrics: ['exact_match', 'f1'], regression: true, grouped: true,
    },
    record,
  ),
  plainTask('superglue/rte', 'superglue/RTE', ['hypothesis', 'premise'], ['entailment', 'not_entailment']),
  plainTask('superglue/wic', 'superglue/WiC', ['word', 'sentence1', 'sentence2'], BOOLEAN),
];
