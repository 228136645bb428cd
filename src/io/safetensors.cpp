#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dsinfer {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

TensorEntry parse_entry(const std::string& path, const std::string& name, const json& meta,
                        const unsigned char* data, size_t data_size) {
  auto bad = [&](const std::string& why) { fail("corrupt safetensors header in '", path, "': tensor '", name, "' ", why); };
  if (!meta.is_object() || !meta.contains("dtype") || !meta.contains("shape") || !meta.contains("data_offsets"))
    bad("lacks dtype, shape or data_offsets");
  const json& offs = meta["data_offsets"];
  if (!meta["dtype"].is_string() || !meta["shape"].is_array() || !offs.is_array() || offs.size() != 2 ||
      !offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
    bad("has malformed dtype, shape or data_offsets");
  TensorEntry e;
  e.name = name;
  e.file = path;
  try {
    e.view.dtype = dtype_from_safetensors(meta["dtype"].get<std::string>());
  } catch (const Error& err) {
    fail("'", path, "': tensor '", name, "': ", err.what());
  }
  for (const json& d : meta["shape"]) {
    if (!d.is_number_unsigned()) bad("has a non-integer dimension");
    e.view.shape.push_back(d.get<int64_t>());
  }
  uint64_t begin = offs[0].get<uint64_t>(), end = offs[1].get<uint64_t>();
  if (begin > end || end > data_size)
    bad(cat("has data_offsets [", begin, ", ", end, "] outside the data section of ", data_size, " bytes (truncated file?)"));
  if (end - begin != e.view.nbytes())
    bad(cat("holds ", end - begin, " bytes but shape ", shape_str(e.view.shape), " of ", dtype_name(e.view.dtype),
            " needs ", e.view.nbytes()));
  e.view.data = const_cast<unsigned char*>(data + begin);
  return e;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(std::make_unique<MappedFile>(path)) {
  size_t size = file_->size();
  if (size < 8) fail("corrupt safetensors file '", path, "': ", size, " bytes, too short for a header");
  uint64_t header_len = 0;
  std::memcpy(&header_len, file_->data(), 8);  // little-endian on every supported host
  if (header_len > size - 8)
    fail("corrupt safetensors file '", path, "': header of ", header_len, " bytes exceeds the file size ", size,
         " (truncated file?)");
  const char* text = reinterpret_cast<const char*>(file_->data() + 8);
  json header = json::parse(text, text + header_len, nullptr, false);
  if (header.is_discarded() || !header.is_object())
    fail("corrupt safetensors file '", path, "': header is not a JSON object");
  const unsigned char* data = file_->data() + 8 + header_len;
  size_t data_size = size - 8 - header_len;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    tensors_.emplace(it.key(), parse_entry(path, it.key(), it.value(), data, data_size));
  }
  check_no_overlap(path);
}

// Two tensors sharing bytes would silently read each other's data.
void SafetensorsFile::check_no_overlap(const std::string& path) const {
  std::vector<const TensorEntry*> by_start;
  for (const auto& [name, e] : tensors_) by_start.push_back(&e);
  auto begin = [](const TensorEntry* e) { return static_cast<const unsigned char*>(e->view.data); };
  std::sort(by_start.begin(), by_start.end(), [&](auto* a, auto* b) { return begin(a) < begin(b); });
  const TensorEntry* furthest = nullptr;  // of the tensors so far, the one that ends last
  for (const TensorEntry* e : by_start) {
    if (e->view.nbytes() == 0) continue;
    if (furthest && begin(furthest) + furthest->view.nbytes() > begin(e))
      fail("corrupt safetensors header in '", path, "': tensors '", furthest->name, "' and '", e->name,
           "' overlap in the data section");
    if (!furthest || begin(e) + e->view.nbytes() > begin(furthest) + furthest->view.nbytes()) furthest = e;
  }
}

TensorStore TensorStore::open_dir(const std::string& dir) {
  TensorStore store;
  store.where_ = dir;
  fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  std::vector<std::string> shards;
  json weight_map;
  if (fs::exists(index_path)) {
    std::ifstream in(index_path);
    json index = json::parse(in, nullptr, false);
    if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      fail("corrupt checkpoint index '", index_path.string(), "': expected a JSON object with a \"weight_map\" object");
    weight_map = index["weight_map"];
    for (auto it = weight_map.begin(); it != weight_map.end(); ++it) {
      if (!it.value().is_string())
        fail("corrupt checkpoint index '", index_path.string(), "': shard of '", it.key(), "' is not a file name");
      std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard == "." || shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
        fail("corrupt checkpoint index '", index_path.string(), "': shard name '", shard, "' of tensor '", it.key(),
             "' is not a file in the model directory");
      if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);
    }
  } else {
    fs::path single = fs::path(dir) / "model.safetensors";
    if (!fs::exists(single))
      fail("no weights in '", dir, "': expected model.safetensors or model.safetensors.index.json");
    shards.push_back("model.safetensors");
  }
  for (const std::string& shard : shards) {
    fs::path p = fs::path(dir) / shard;
    if (!fs::exists(p)) fail("missing checkpoint shard '", p.string(), "' listed in ", index_path.string());
    store.files_.push_back(std::make_unique<SafetensorsFile>(p.string()));
    for (const auto& [name, entry] : store.files_.back()->tensors()) {
      // The index says which shard holds a tensor; a copy in another shard is a broken checkpoint.
      auto listed = weight_map.find(name);
      if (listed != weight_map.end() && listed->get<std::string>() != shard)
        fail("checkpoint index '", index_path.string(), "' places tensor '", name, "' in shard '",
             listed->get<std::string>(), "' but shard '", shard, "' holds it too");
      if (!store.index_.emplace(name, &entry).second)
        fail("tensor '", name, "' is in two shards of '", dir, "' (", store.index_[name]->file, " and ", p.string(), ")");
    }
  }
  for (auto it = weight_map.begin(); it != weight_map.end(); ++it)
    if (!store.index_.count(it.key()))
      fail("checkpoint index '", index_path.string(), "' lists tensor '", it.key(), "' in shard '",
           it.value().get<std::string>(), "' but that shard does not hold it");
  return store;
}

TensorStore TensorStore::generated(std::vector<TensorEntry> tensors, const std::string& where) {
  TensorStore store;
  store.where_ = where;
  store.owned_entries_ = std::make_unique<std::map<std::string, TensorEntry>>();
  for (TensorEntry& e : tensors) {
    if (!e.generate || e.view.data) fail("generated tensor '", e.name, "' needs a generator and no data");
    const std::string name = e.name;
    store.index_[name] = &store.owned_entries_->emplace(name, std::move(e)).first->second;
  }
  return store;
}

const TensorEntry& TensorStore::get(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail("missing tensor '", name, "' in checkpoint '", where_, "'");
  return *it->second;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> r;
  for (const auto& kv : index_) r.push_back(kv.first);
  return r;
}

}  // namespace dsinfer
