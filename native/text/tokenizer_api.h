// The boundary between the addon and libsm_sentencepiece.so, the plugin that wraps SentencePiece.
//
// Why a plugin: Debian's libsentencepiece carries its own protobuf-lite 3.14 while libtorch links
// the system libprotobuf 3.21. Linked into one object, either library's protobuf code binds to the
// other's symbols and the process crashes or aborts at load. The addon dlopen()s the plugin with
// RTLD_LOCAL, so SentencePiece resolves its symbols in a scope of its own. Only this interface
// (virtual calls, standard-library types) crosses the boundary.
#pragma once

#include <string>
#include <vector>

namespace sm::text {

struct TokenizerInfo {
  int vocabSize, padId, unkId, bosId, eosId;
};

class TextTokenizer {
 public:
  virtual ~TextTokenizer() = default;
  // Each returns an empty string on success, else the error message.
  virtual std::string encode(const std::string& text, std::vector<int>* ids) const = 0;
  virtual std::string encodePieces(const std::string& text, std::vector<std::string>* pieces) const = 0;
  virtual std::string decode(const std::vector<int>& ids, std::string* text) const = 0;
  virtual int pieceToId(const std::string& piece) const = 0;
  virtual std::string idToPiece(int id) const = 0;
  virtual TokenizerInfo info() const = 0;
};

// Plugin entry points (extern "C", looked up with dlsym).
using LoadFn = TextTokenizer* (*)(const std::string& source, bool isPath, std::string* error);
using TrainFn = bool (*)(const std::string& args, const std::vector<std::string>& sentences, std::string* model,
                         std::string* error);

constexpr const char* kLoadSymbol = "sm_text_load";
constexpr const char* kTrainSymbol = "sm_text_train";
constexpr const char* kPluginFile = "libsm_sentencepiece.so";

}  // namespace sm::text
