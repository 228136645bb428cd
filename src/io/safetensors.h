// Safetensors checkpoints: one file, or shards listed by model.safetensors.index.json.
// Tensors are views straight into the memory-mapped files; nothing is copied at load.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/mapped_file.h"

namespace dsinfer {

// Writes elements [first, first + count) of a tensor, row-major, in its dtype, to `out`.
using TensorGenerator = std::function<void(int64_t first, int64_t count, void* out)>;

struct TensorEntry {
  std::string name;
  Tensor view;       // host view into the mapping (data null for a generated tensor)
  std::string file;  // which shard holds it, for error messages
  // Set instead of data for tensors made on demand (dummy weights): a reader takes only the
  // part it needs, and nothing of the whole model need ever be in memory at once.
  TensorGenerator generate;
};

// One .safetensors file: validates the header against the file size and dtypes.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::map<std::string, TensorEntry>& tensors() const { return tensors_; }

 private:
  void check_no_overlap(const std::string& path) const;
  std::unique_ptr<MappedFile> file_;
  std::map<std::string, TensorEntry> tensors_;
};

// All tensors of a checkpoint directory, by name.
class TensorStore {
 public:
  // Opens DIR/model.safetensors.index.json with its shards, else DIR/model.safetensors.
  static TensorStore open_dir(const std::string& dir);
  // Tensors made on demand (TensorEntry::generate set, view.data null).
  static TensorStore generated(std::vector<TensorEntry> tensors, const std::string& where);

  bool has(const std::string& name) const { return index_.count(name) > 0; }
  // Throws naming the tensor (and the checkpoint) when it is absent.
  const TensorEntry& get(const std::string& name) const;
  std::vector<std::string> names() const;
  size_t size() const { return index_.size(); }

 private:
  std::string where_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unique_ptr<std::map<std::string, TensorEntry>> owned_entries_;
  std::map<std::string, const TensorEntry*> index_;
};

}  // namespace dsinfer
