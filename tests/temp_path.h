// A file or directory in the temp directory, named for the test process, removed with everything
// under it when the object goes: a test's temp files do not outlive it.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace dsinfer::testing {

class TempPath {
 public:
  explicit TempPath(const std::string& name)
      : path_(std::filesystem::temp_directory_path() / ("dsinfer_" + std::to_string(::getpid()) + "_" + name)) {}
  ~TempPath() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Writes `content` to the file; returns its path.
  std::string write(const std::string& content) const {
    std::ofstream(path_, std::ios::binary) << content;
    return path_.string();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace dsinfer::testing
