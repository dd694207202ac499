// SentencePiece tokenizers: load a .model (file or bytes), encode, decode, piece<->id, batch
// encoding off the JavaScript thread, and training a model from sentences given by JavaScript.
// SentencePiece itself lives in the plugin libsm_sentencepiece.so (see text/tokenizer_api.h).
#include <dlfcn.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "args.h"
#include "registry.h"
#include "text/tokenizer_api.h"

namespace sm {
namespace {

using Processor = text::TextTokenizer;

struct Plugin {
  text::LoadFn load = nullptr;
  text::TrainFn train = nullptr;
};

// The plugin sits next to the addon binary; it is opened once, RTLD_LOCAL (see tokenizer_api.h).
const Plugin& plugin() {
  static Plugin loaded = [] {
    Dl_info self{};
    if (dladdr(reinterpret_cast<void*>(&plugin), &self) == 0 || self.dli_fname == nullptr) {
      throw std::runtime_error("cannot locate the sparse-mixer addon to find " + std::string(text::kPluginFile));
    }
    std::string dir(self.dli_fname);
    dir = dir.substr(0, dir.find_last_of('/') + 1);
    std::string path = dir + text::kPluginFile;
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      throw std::runtime_error(std::string("cannot load the SentencePiece plugin: ") + dlerror() +
                               " (install libsentencepiece0, or rebuild: npm rebuild sparse-mixer)");
    }
    Plugin p;
    p.load = reinterpret_cast<text::LoadFn>(dlsym(handle, text::kLoadSymbol));
    p.train = reinterpret_cast<text::TrainFn>(dlsym(handle, text::kTrainSymbol));
    if (!p.load || !p.train) throw std::runtime_error(path + " lacks its entry points");
    return p;
  }();
  return loaded;
}

// Processors are shared so an async worker keeps its processor alive if JavaScript frees it.
std::unordered_map<int32_t, std::shared_ptr<Processor>>& processors() {
  static auto* table = new std::unordered_map<int32_t, std::shared_ptr<Processor>>();  // never destroyed, as TensorStore
  return *table;
}

std::shared_ptr<Processor> processorArg(const Napi::CallbackInfo& info, size_t i) {
  auto it = processors().find(static_cast<int32_t>(intArg(info, i)));
  if (it == processors().end()) throw std::invalid_argument("the tokenizer was disposed");
  return it->second;
}

void check(const std::string& error, const std::string& what) {
  if (!error.empty()) throw std::runtime_error(what + ": " + error);
}

// (path: string | bytes: Uint8Array) -> id
Napi::Value spLoad(const Napi::CallbackInfo& info) {
  static int32_t nextId = 1;
  std::string source, error;
  bool isPath = info[0].IsString();
  if (isPath) {
    source = stringArg(info, 0);
  } else if (info[0].IsTypedArray()) {
    auto bytes = info[0].As<Napi::Uint8Array>();
    source.assign(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength());
  } else {
    throw Napi::TypeError::New(info.Env(), "spLoad: expected a file path or a Uint8Array");
  }
  std::shared_ptr<Processor> processor(plugin().load(source, isPath, &error));
  if (!processor) throw std::runtime_error("cannot load SentencePiece model " + (isPath ? source : "from bytes") + ": " + error);
  int32_t id = nextId++;
  processors().emplace(id, std::move(processor));
  return Napi::Number::New(info.Env(), id);
}

Napi::Value spFree(const Napi::CallbackInfo& info) {
  processors().erase(static_cast<int32_t>(intArg(info, 0)));
  return info.Env().Undefined();
}

Napi::Int32Array toInt32Array(Napi::Env env, const std::vector<int>& ids) {
  auto out = Napi::Int32Array::New(env, ids.size());
  std::copy(ids.begin(), ids.end(), out.Data());
  return out;
}

Napi::Value spEncode(const Napi::CallbackInfo& info) {
  auto p = processorArg(info, 0);
  std::vector<int> ids;
  check(p->encode(stringArg(info, 1), &ids), "encode");
  return toInt32Array(info.Env(), ids);
}

Napi::Value spEncodePieces(const Napi::CallbackInfo& info) {
  auto p = processorArg(info, 0);
  std::vector<std::string> pieces;
  check(p->encodePieces(stringArg(info, 1), &pieces), "encode");
  auto out = Napi::Array::New(info.Env(), pieces.size());
  for (size_t k = 0; k < pieces.size(); ++k) out.Set(static_cast<uint32_t>(k), Napi::String::New(info.Env(), pieces[k]));
  return out;
}

Napi::Value spDecode(const Napi::CallbackInfo& info) {
  auto p = processorArg(info, 0);
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw Napi::TypeError::New(info.Env(), "spDecode: expected an Int32Array of ids");
  }
  auto array = info[1].As<Napi::Int32Array>();
  const int size = p->info().vocabSize;
  std::vector<int> ids(array.Data(), array.Data() + array.ElementLength());
  for (int id : ids) {
    if (id < 0 || id >= size) throw std::out_of_range("decode: id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(size) + ")");
  }
  std::string text;
  check(p->decode(ids, &text), "decode");
  return Napi::String::New(info.Env(), text);
}

Napi::Value spPieceToId(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), processorArg(info, 0)->pieceToId(stringArg(info, 1)));
}

Napi::Value spIdToPiece(const Napi::CallbackInfo& info) {
  auto p = processorArg(info, 0);
  int64_t id = intArg(info, 1);
  if (id < 0 || id >= p->info().vocabSize) throw std::out_of_range("id " + std::to_string(id) + " is outside the vocabulary");
  return Napi::String::New(info.Env(), p->idToPiece(static_cast<int>(id)));
}

Napi::Value spInfo(const Napi::CallbackInfo& info) {
  text::TokenizerInfo i = processorArg(info, 0)->info();
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("vocabSize", Napi::Number::New(env, i.vocabSize));
  out.Set("padId", Napi::Number::New(env, i.padId));
  out.Set("unkId", Napi::Number::New(env, i.unkId));
  out.Set("bosId", Napi::Number::New(env, i.bosId));
  out.Set("eosId", Napi::Number::New(env, i.eosId));
  return out;
}

// Encodes many texts on a worker thread: resolves to { ids: Int32Array, offsets: Int32Array }
// where text k's ids are ids[offsets[k] .. offsets[k + 1]).
class EncodeBatchWorker : public Napi::AsyncWorker {
 public:
  EncodeBatchWorker(Napi::Env env, std::shared_ptr<Processor> p, std::vector<std::string> texts)
      : Napi::AsyncWorker(env), processor_(std::move(p)), texts_(std::move(texts)), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    offsets_.push_back(0);
    std::vector<int> piece;
    for (const auto& text : texts_) {
      std::string error = processor_->encode(text, &piece);
      if (!error.empty()) {
        SetError("encode: " + error);
        return;
      }
      ids_.insert(ids_.end(), piece.begin(), piece.end());
      offsets_.push_back(static_cast<int>(ids_.size()));
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    auto out = Napi::Object::New(env);
    out.Set("ids", toInt32Array(env, ids_));
    out.Set("offsets", toInt32Array(env, offsets_));
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::shared_ptr<Processor> processor_;
  std::vector<std::string> texts_;
  std::vector<int> ids_, offsets_;
  Napi::Promise::Deferred deferred_;
};

std::vector<std::string> stringListArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) throw Napi::TypeError::New(info.Env(), "expected an array of strings");
  auto array = info[i].As<Napi::Array>();
  std::vector<std::string> out(array.Length());
  for (uint32_t k = 0; k < array.Length(); ++k) {
    Napi::Value v = array.Get(k);
    if (!v.IsString()) throw Napi::TypeError::New(info.Env(), "expected an array of strings (item " + std::to_string(k) + ")");
    out[k] = v.As<Napi::String>().Utf8Value();
  }
  return out;
}

Napi::Value spEncodeBatch(const Napi::CallbackInfo& info) {
  auto* worker = new EncodeBatchWorker(info.Env(), processorArg(info, 0), stringListArg(info, 1));
  auto promise = worker->promise();
  worker->Queue();
  return promise;
}

// Trains a model from sentences on a worker thread: (args: string, sentences: string[]) ->
// Promise<Uint8Array> (the serialized model).
class TrainWorker : public Napi::AsyncWorker {
 public:
  TrainWorker(Napi::Env env, text::TrainFn train, std::string args, std::vector<std::string> sentences)
      : Napi::AsyncWorker(env),
        train_(train),
        args_(std::move(args)),
        sentences_(std::move(sentences)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    std::string error;
    if (!train_(args_, sentences_, &model_, &error)) SetError("SentencePiece training failed: " + error);
  }

  void OnOK() override {
    auto out = Napi::Uint8Array::New(Env(), model_.size());
    std::copy(model_.begin(), model_.end(), out.Data());
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  text::TrainFn train_;
  std::string args_;
  std::vector<std::string> sentences_;
  std::string model_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value spTrain(const Napi::CallbackInfo& info) {
  auto* worker = new TrainWorker(info.Env(), plugin().train, stringArg(info, 0), stringListArg(info, 1));
  auto promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

void registerSentencePiece(Napi::Env env, Napi::Object exports) {
  SM_DEFINE(exports, spLoad);
  SM_DEFINE(exports, spFree);
  SM_DEFINE(exports, spEncode);
  SM_DEFINE(exports, spEncodePieces);
  SM_DEFINE(exports, spDecode);
  SM_DEFINE(exports, spPieceToId);
  SM_DEFINE(exports, spIdToPiece);
  SM_DEFINE(exports, spInfo);
  SM_DEFINE(exports, spEncodeBatch);
  SM_DEFINE(exports, spTrain);
}

}  // namespace sm
