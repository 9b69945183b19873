// Warnings: things a user should hear of that do not stop the work (a kernel cache that could
// not be read, ...). The library hands each to one sink; the default writes
// "cae: warning: MESSAGE" to standard error, a test or an embedding program may collect them.
#pragma once

#include <functional>
#include <string>

namespace cae {

using WarningSink = std::function<void(const std::string& message)>;

// Requires nothing. Ensures later warnings go to sink (null: the default); returns the sink that
// was in place. Not for use while other threads warn.
WarningSink set_warning_sink(WarningSink sink);

// Hands message to the sink.
void warn(const std::string& message);

}  // namespace cae
