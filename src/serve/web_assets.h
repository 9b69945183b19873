// The page's files (web/), built into the binary by cmake/embed_web.cmake, so that cae serve
// needs no files at run time and works offline.
#pragma once

#include <span>
#include <string_view>

namespace cae::serve {

struct WebFile {
  std::string_view name;          // "index.html", "app.js", ...
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view body;
};

// Ensures every file of web/ as it was at build time.
std::span<const WebFile> web_files();

// Ensures the Content-Type of a file name by its extension (application/octet-stream when
// unknown).
std::string_view web_content_type(std::string_view name);

}  // namespace cae::serve
