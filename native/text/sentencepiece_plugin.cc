// libsm_sentencepiece.so: SentencePiece behind the plain interface of tokenizer_api.h.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include "tokenizer_api.h"

namespace sm::text {
namespace {

std::string message(const sentencepiece::util::Status& status) { return status.ok() ? std::string() : status.ToString(); }

class SentencePieceTokenizer : public TextTokenizer {
 public:
  sentencepiece::SentencePieceProcessor processor;

  std::string encode(const std::string& text, std::vector<int>* ids) const override {
    return message(processor.Encode(text, ids));
  }
  std::string encodePieces(const std::string& text, std::vector<std::string>* pieces) const override {
    return message(processor.Encode(text, pieces));
  }
  std::string decode(const std::vector<int>& ids, std::string* text) const override {
    return message(processor.Decode(ids, text));
  }
  int pieceToId(const std::string& piece) const override { return processor.PieceToId(piece); }
  std::string idToPiece(int id) const override { return processor.IdToPiece(id); }
  TokenizerInfo info() const override {
    return {processor.GetPieceSize(), processor.pad_id(), processor.unk_id(), processor.bos_id(), processor.eos_id()};
  }
};

class VectorSentences : public sentencepiece::SentenceIterator {
 public:
  explicit VectorSentences(const std::vector<std::string>& sentences) : sentences_(sentences) {}
  bool done() const override { return index_ >= sentences_.size(); }
  void Next() override { ++index_; }
  const std::string& value() const override { return sentences_[index_]; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  const std::vector<std::string>& sentences_;
  size_t index_ = 0;
};

}  // namespace
}  // namespace sm::text

extern "C" __attribute__((visibility("default"))) sm::text::TextTokenizer* sm_text_load(const std::string& source, bool isPath,
                                                                                        std::string* error) {
  auto tokenizer = new sm::text::SentencePieceTokenizer();
  auto status = isPath ? tokenizer->processor.Load(source) : tokenizer->processor.LoadFromSerializedProto(source);
  if (!status.ok()) {
    *error = status.ToString();
    delete tokenizer;
    return nullptr;
  }
  return tokenizer;
}

extern "C" __attribute__((visibility("default"))) bool sm_text_train(const std::string& args,
                                                                     const std::vector<std::string>& sentences,
                                                                     std::string* model, std::string* error) {
  sm::text::VectorSentences iterator(sentences);
  auto status = sentencepiece::SentencePieceTrainer::Train(args, &iterator, model);
  if (!status.ok()) *error = status.ToString();
  return status.ok();
}
