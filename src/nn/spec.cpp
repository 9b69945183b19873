#include "nn/spec.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <sstream>

#include "cae/error.h"

namespace cae::nn {

namespace {

const std::map<std::string, std::string>& presets() {
  // DESIGN.md §1: the TensorFlow tutorial's denoising autoencoder, and its transposed-conv twin.
  static const std::map<std::string, std::string> table = {
      {"seed",
       "conv 32 relu\npool\nconv 32 relu\npool\nconv 16 relu\npool\n"
       "resize mirror\nconv 16 relu\nresize mirror\nconv 32 relu\nresize mirror\nconv 32 relu\n"
       "conv channels\n"},
      // The seed's encoder and decoder, each encoder activation concatenated into the decoder
      // after the resize that brings it back to its size (U-Net, Ronneberger et al. 2015).
      {"unet",
       "conv 32 relu as e1\npool\nconv 32 relu as e2\npool\nconv 16 relu as e3\npool\n"
       "resize mirror\nconcat e3\nconv 16 relu\nresize mirror\nconcat e2\nconv 32 relu\n"
       "resize mirror\nconcat e1\nconv 32 relu\nconv channels\n"},
      {"unet-wide",
       "conv 64 relu as e1\npool\nconv 64 relu as e2\npool\nconv 32 relu as e3\npool\n"
       "resize mirror\nconcat e3\nconv 32 relu\nresize mirror\nconcat e2\nconv 64 relu\n"
       "resize mirror\nconcat e1\nconv 64 relu\nconv channels\n"},
      // The unet with batch normalisation after every hidden conv, before its ReLU; the convs
      // lose their biases to BN's shift (bench/torch_seed.py --preset unet-bn measured it).
      {"unet-bn",
       "conv 32 nobias\nbn relu as e1\npool\nconv 32 nobias\nbn relu as e2\npool\n"
       "conv 16 nobias\nbn relu as e3\npool\nresize mirror\nconcat e3\nconv 16 nobias\nbn relu\n"
       "resize mirror\nconcat e2\nconv 32 nobias\nbn relu\nresize mirror\nconcat e1\n"
       "conv 32 nobias\nbn relu\nconv channels\n"},
      // Closer to Ronneberger's U-Net: two 64-channel convs per level, a conv at the 4x4
      // bottom, and two convs after each concatenation but the smallest.
      {"unet-deep",
       "conv 64 relu\nconv 64 relu as e1\npool\nconv 64 relu\nconv 64 relu as e2\npool\n"
       "conv 64 relu as e3\npool\nconv 64 relu\n"
       "resize mirror\nconcat e3\nconv 64 relu\nresize mirror\nconcat e2\nconv 64 relu\n"
       "conv 64 relu\nresize mirror\nconcat e1\nconv 64 relu\nconv 64 relu\nconv channels\n"},
      // DnCNN-like (Zhang et al. 2017), shallow: a stack at full resolution predicts the noise,
      // and the logits are the input minus it.
      {"residual",
       "conv 32 relu\nconv 32 relu\nconv 32 relu\nconv 32 relu\nconv 32 relu\n"
       "conv channels\nsub input\n"},
      {"seed-tconv",
       "conv 32 relu\npool\nconv 32 relu\npool\nconv 16 relu\npool\n"
       "tconv 16 s2 mirror relu\ntconv 32 s2 mirror relu\ntconv 32 s2 mirror relu\n"
       "conv channels\n"},
  };
  return table;
}

[[noreturn]] void fail(int line, const std::string& token, const std::string& why) {
  throw Error("architecture spec, line " + std::to_string(line) + ", token '" + token +
              "': " + why);
}

bool parse_int(const std::string& s, int& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

int parse_positive(const std::string& digits, int line, const std::string& token,
                   const char* what) {
  int v = 0;
  if (!parse_int(digits, v) || v < 1 || v > 65536)
    fail(line, token, std::string(what) + " must be a whole number from 1 to 65536");
  return v;
}

// Every spatial size, given or computed, stays within this, so that shape arithmetic (a size
// times a stride, both at most 65536) cannot overflow, done in 64 bits.
constexpr int kMaxSize = 65536;

// "HxW" or "N" → (h, w), each 1 to kMaxSize
bool parse_size(const std::string& token, int& h, int& w) {
  auto x = token.find('x');
  if (x == std::string::npos) {
    if (!parse_int(token, h) || h < 1 || h > kMaxSize) return false;
    w = h;
    return true;
  }
  return parse_int(token.substr(0, x), h) && parse_int(token.substr(x + 1), w) && h >= 1 &&
         w >= 1 && h <= kMaxSize && w <= kMaxSize;
}

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 64 || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  return std::ranges::all_of(s, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

std::string spec_words() {
  std::string words;
  const auto& table = ops::op_table();
  for (std::size_t i = 0; i < table.size(); ++i)
    words += std::string(i == 0 ? "" : i + 1 == table.size() ? " or " : ", ") +
             table[i].spec_word;
  return words;
}

// One line's layer, its keyword and what may follow it as the op table says (ops::SpecArgs).
LayerSpec parse_line(const std::vector<std::string>& tokens, int line) {
  LayerSpec layer;
  layer.line = line;
  const std::string& head = tokens[0];
  const ops::OpInfo* info = ops::op_by_spec_word(head);
  if (!info) fail(line, head, "unknown layer (expected " + spec_words() + ")");
  layer.kind = info->kind;
  layer.kernel = info->kernel;
  layer.stride = info->stride;
  std::size_t next = 1;
  switch (info->spec_args) {
    case ops::SpecArgs::conv:
      if (tokens.size() < 2)
        fail(line, head, "needs an output channel count (a number or 'channels')");
      if (tokens[1] != "channels")
        layer.channels = parse_positive(tokens[1], line, tokens[1], "channel count");
      next = 2;
      break;
    case ops::SpecArgs::window:
      break;
    case ops::SpecArgs::target:
      if (tokens.size() != 2) fail(line, head, "needs exactly one target: 'mirror', HxW or N");
      if (tokens[1] == "mirror") {
        layer.size = SizeRule::mirror;
      } else if (parse_size(tokens[1], layer.out_h, layer.out_w)) {
        layer.size = SizeRule::fixed;
      } else {
        fail(line, tokens[1], "expected 'mirror', HxW or N (sizes from 1 to 65536)");
      }
      return layer;
    case ops::SpecArgs::operand:
      if (tokens.size() != 2)
        fail(line, head,
             "needs exactly one operand: the name of an earlier activation ('as NAME')");
      if (!valid_name(tokens[1]))
        fail(line, tokens[1], "not a name (a letter, then letters, digits, '_' or '-')");
      layer.joins = tokens[1];
      return layer;
    case ops::SpecArgs::nothing:
      if (tokens.size() > 1) fail(line, tokens[1], "'" + head + "' takes no options");
      return layer;
    case ops::SpecArgs::norm:
      for (std::size_t t = 1; t < tokens.size(); ++t) {
        if (tokens[t] != "relu" && tokens[t] != "linear")
          fail(line, tokens[t], "not an option of '" + head + "' (relu or linear)");
        layer.act = tokens[t] == "relu" ? ops::Activation::relu : ops::Activation::none;
      }
      layer.bias = false;
      return layer;
  }

  // conv and window ops: kK sS and a size word; conv ops also an activation and nobias.
  const bool is_conv = info->spec_args == ops::SpecArgs::conv;
  const bool transposed = info->shape == ops::ShapeRule::transposed;
  for (; next < tokens.size(); ++next) {
    const std::string& t = tokens[next];
    // A later size word overrides an earlier HxW: forget its numbers, so that format_spec's text
    // parses back to the same layer.
    if (t == "same" || t == "valid" || t == "mirror") layer.out_h = layer.out_w = 0;
    if (t.size() > 1 && t[0] == 'k' && std::isdigit(static_cast<unsigned char>(t[1]))) {
      layer.kernel = parse_positive(t.substr(1), line, t, "kernel size");
    } else if (t.size() > 1 && t[0] == 's' && std::isdigit(static_cast<unsigned char>(t[1]))) {
      layer.stride = parse_positive(t.substr(1), line, t, "stride");
    } else if (t == "same") {
      layer.size = SizeRule::same;
    } else if (t == "valid" && !transposed) {
      layer.size = SizeRule::valid;
    } else if (t == "mirror" && transposed) {
      layer.size = SizeRule::mirror;
    } else if (transposed && parse_size(t, layer.out_h, layer.out_w)) {
      layer.size = SizeRule::fixed;
    } else if (const auto act = ops::activation_by_spec_word(t); is_conv && act) {
      layer.act = *act;
    } else if (is_conv && t == "nobias") {
      layer.bias = false;
    } else {
      fail(line, t, "not an option of '" + head + "'");
    }
  }
  return layer;
}

int same_out(int in, int stride) { return (in + stride - 1) / stride; }

// TF 'same': pad_total = max((out-1)*s + k - in, 0), the odd cell after.
void same_padding(int in, int out, int k, int s, int& before, int& after) {
  int total = std::max((out - 1) * s + k - in, 0);
  before = total / 2;
  after = total - before;
}

std::string dims_text(ops::Dims d) {
  return std::to_string(d.h) + "x" + std::to_string(d.w) + "x" + std::to_string(d.c);
}

// A batchnorm is folded into the conv before it for inference and export (Model::folded), so
// that conv must exist, end in no activation and have no name a join could read.
void check_norms(const Architecture& arch) {
  for (std::size_t i = 0; i < arch.layers.size(); ++i) {
    const LayerSpec& l = arch.layers[i];
    if (ops::op_info(l.kind).spec_args != ops::SpecArgs::norm) continue;
    const std::string& word = ops::op_info(l.kind).spec_word;
    const LayerSpec* conv = i ? &arch.layers[i - 1] : nullptr;
    if (!conv || ops::op_info(conv->kind).spec_args != ops::SpecArgs::conv)
      fail(l.line, word, "follows a conv or tconv line (it is folded into that conv)");
    if (conv->act != ops::Activation::none)
      fail(l.line, word,
           "follows a conv with an activation: put the activation on this line ('" + word +
               " relu') and write the conv 'linear' or without one");
    if (!conv->name.empty())
      fail(l.line, word,
           "follows a conv named '" + conv->name +
               "': name this line instead (the conv's own output is gone once folded)");
  }
}

// Gives every join the layer index of its operand, and rejects what cannot be a chain with
// skips: an unknown or repeated name, a join with the layer just before it (x itself), a name
// from a later line or the join's own (a cycle).
void resolve_names(Architecture& arch) {
  std::map<std::string, int> defined;  // name -> layer index
  for (int i = 0; i < int(arch.layers.size()); ++i) {
    LayerSpec& l = arch.layers[i];
    if (!l.joins.empty()) {
      if (l.joins == "input") {
        l.joins_layer = ops::OpDesc::kNetInput;
      } else if (auto it = defined.find(l.joins); it != defined.end()) {
        l.joins_layer = it->second;
      } else {
        for (int j = i; j < int(arch.layers.size()); ++j)
          if (arch.layers[j].name == l.joins)
            fail(l.line, l.joins,
                 "is named on line " + std::to_string(arch.layers[j].line) +
                     (j == i ? ", by this join itself" : ", after this join") +
                     ": a join reads an earlier activation only (this would be a cycle)");
        std::string known = "input";
        for (const auto& [key, _] : defined) known += ", " + key;
        fail(l.line, l.joins, "unknown name (named so far: " + known + ")");
      }
      if (l.joins_layer == i - 1)
        fail(l.line, l.joins,
             "is the layer just before, the join's own first operand: name an earlier one");
    }
    if (!l.name.empty()) {
      if (auto [it, fresh] = defined.emplace(l.name, i); !fresh)
        fail(l.line, l.name,
             "is named twice (also on line " + std::to_string(arch.layers[it->second].line) + ")");
    }
  }
}

}  // namespace

Architecture parse_spec(const std::string& text) {
  Architecture arch;
  arch.text = text;
  std::istringstream lines(text);
  std::string raw;
  int line_no = 0;
  while (std::getline(lines, raw)) {
    ++line_no;
    if (auto hash = raw.find('#'); hash != std::string::npos) raw.resize(hash);
    std::stringstream parts(raw);
    std::string part;
    while (std::getline(parts, part, ';')) {
      std::istringstream words(part);
      std::vector<std::string> tokens;
      for (std::string w; words >> w;) tokens.push_back(w);
      if (tokens.empty()) continue;
      std::string name;
      if (auto as = std::ranges::find(tokens, "as"); as != tokens.end()) {
        if (as == tokens.begin()) fail(line_no, "as", "'as NAME' follows a layer");
        if (as + 2 != tokens.end()) fail(line_no, "as", "'as' ends a line with one name after it");
        name = *(as + 1);
        if (!valid_name(name) || name == "input")
          fail(line_no, name,
               name == "input" ? "'input' names the net's input already"
                               : "not a name (a letter, then letters, digits, '_' or '-')");
        tokens.erase(as, tokens.end());
      }
      LayerSpec layer = parse_line(tokens, line_no);
      layer.name = name;
      arch.layers.push_back(std::move(layer));
    }
  }
  if (arch.layers.empty()) throw Error("architecture spec is empty: it needs at least one layer");
  check_norms(arch);
  resolve_names(arch);
  return arch;
}

const std::string& preset_spec(const std::string& name) {
  auto it = presets().find(name);
  if (it == presets().end()) {
    std::string known;
    for (const auto& [key, _] : presets()) {
      if (!known.empty()) known += ", ";
      known += key;
    }
    throw Error("unknown preset '" + name + "' (known: " + known + ")");
  }
  return it->second;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& [key, _] : presets()) names.push_back(key);
  return names;
}

ops::NetDesc build_net(const Architecture& arch, ops::Dims input, int batch,
                       int image_channels) {
  if (batch < 1) throw Error("batch size must be at least 1, got " + std::to_string(batch));
  if (input.c < 1 || input.h < 1 || input.w < 1)
    throw Error("input shape " + dims_text(input) + " is empty");
  if (input.c > kMaxSize || input.h > kMaxSize || input.w > kMaxSize)
    throw Error("input shape " + dims_text(input) + " is larger than 65536 in some dimension");
  const int channels = image_channels > 0 ? image_channels : input.c;  // what 'channels' means
  ops::NetDesc net;
  net.batch = batch;
  net.input = input;
  std::vector<ops::Dims> downsampled_from;  // stack for 'mirror'
  ops::Dims cur = input;
  for (std::size_t i = 0; i < arch.layers.size(); ++i) {
    const LayerSpec& l = arch.layers[i];
    const std::string where = "architecture spec, line " + std::to_string(l.line) + " (layer " +
                              std::to_string(i + 1) + ", input " + dims_text(cur) + "): ";
    auto pop_mirror = [&]() {
      if (downsampled_from.empty())
        throw Error(where + "'mirror' has no matching downsampling layer before it");
      ops::Dims d = downsampled_from.back();
      downsampled_from.pop_back();
      return d;
    };
    ops::OpDesc op;
    op.in = cur;
    op.kernel = l.kernel;
    op.stride = l.stride;
    op.bias = l.bias;
    op.act = l.act;
    op.kind = l.kind;
    const ops::OpInfo& info = ops::op_info(l.kind);
    switch (info.shape) {
      case ops::ShapeRule::window:
      case ops::ShapeRule::pool: {
        op.out.c =
            info.shape == ops::ShapeRule::pool ? cur.c : (l.channels ? l.channels : channels);
        if (l.size == SizeRule::same) {
          op.out.h = same_out(cur.h, l.stride);
          op.out.w = same_out(cur.w, l.stride);
          same_padding(cur.h, op.out.h, l.kernel, l.stride, op.pad_top, op.pad_bottom);
          same_padding(cur.w, op.out.w, l.kernel, l.stride, op.pad_left, op.pad_right);
        } else {
          if (cur.h < l.kernel || cur.w < l.kernel)
            throw Error(where + "a 'valid' window of " + std::to_string(l.kernel) +
                        " does not fit");
          op.out.h = (cur.h - l.kernel) / l.stride + 1;
          op.out.w = (cur.w - l.kernel) / l.stride + 1;
        }
        if (l.stride > 1) downsampled_from.push_back(cur);
        break;
      }
      case ops::ShapeRule::transposed: {
        op.out.c = l.channels ? l.channels : channels;
        std::int64_t oh = std::int64_t(cur.h) * l.stride, ow = std::int64_t(cur.w) * l.stride;
        if (l.size == SizeRule::mirror) {
          ops::Dims d = pop_mirror();
          oh = d.h;
          ow = d.w;
        } else if (l.size == SizeRule::fixed) {
          oh = l.out_h;
          ow = l.out_w;
        }
        // The padding of the forward conv that maps out → in (TF conv2d_transpose).
        const std::int64_t total_h = std::int64_t(cur.h - 1) * l.stride + l.kernel - oh;
        const std::int64_t total_w = std::int64_t(cur.w - 1) * l.stride + l.kernel - ow;
        if (oh > kMaxSize || ow > kMaxSize || total_h < 0 || total_w < 0 ||
            total_h >= l.kernel || total_w >= l.kernel || same_out(int(oh), l.stride) != cur.h ||
            same_out(int(ow), l.stride) != cur.w)
          throw Error(where + "a k" + std::to_string(l.kernel) + " s" + std::to_string(l.stride) +
                      " transposed conv cannot produce " + std::to_string(oh) + "x" +
                      std::to_string(ow));
        op.pad_top = int(total_h / 2);
        op.pad_bottom = int(total_h) - op.pad_top;
        op.pad_left = int(total_w / 2);
        op.pad_right = int(total_w) - op.pad_left;
        op.out.h = int(oh);
        op.out.w = int(ow);
        break;
      }
      case ops::ShapeRule::resize: {
        op.kernel = op.stride = 1;
        op.act = ops::Activation::none;
        op.out.c = cur.c;
        if (l.size == SizeRule::mirror) {
          ops::Dims d = pop_mirror();
          op.out.h = d.h;
          op.out.w = d.w;
        } else {
          op.out.h = l.out_h;
          op.out.w = l.out_w;
        }
        break;
      }
      case ops::ShapeRule::same:
      case ops::ShapeRule::concat: {
        op.kernel = op.stride = 1;
        if (!info.fuses_activation) op.act = ops::Activation::none;
        if (info.weights == ops::Weights::norm) op.bias = false;
        op.out = cur;
        if (info.join == ops::Join::none) break;
        op.other = l.joins_layer;
        const bool concat = info.shape == ops::ShapeRule::concat;
        const ops::Dims y = op.other == ops::OpDesc::kNetInput ? input : net.ops[op.other].out;
        const bool fits = y.h == cur.h && y.w == cur.w && (concat || y.c == cur.c);
        if (!fits)
          throw Error(where + "token '" + l.joins + "': its shape " + dims_text(y) +
                      (concat ? " has another spatial size than " : " differs from ") +
                      dims_text(cur) + ", the activation it joins");
        if (concat) {
          if (std::int64_t(cur.c) + y.c > kMaxSize)
            throw Error(where + "token '" + l.joins + "': more than 65536 channels");
          op.out.c = cur.c + y.c;
        }
        break;
      }
    }
    if (op.out.h < 1 || op.out.w < 1)
      throw Error(where + "the output would be empty (" + dims_text(op.out) + ")");
    net.ops.push_back(op);
    cur = op.out;
  }
  return net;
}

std::string format_spec(const Architecture& arch) {
  std::string out;
  for (const LayerSpec& l : arch.layers) {
    auto size_word = [&]() -> std::string {
      switch (l.size) {
        case SizeRule::same: return "same";
        case SizeRule::valid: return "valid";
        case SizeRule::mirror: return "mirror";
        case SizeRule::fixed: return std::to_string(l.out_h) + "x" + std::to_string(l.out_w);
      }
      return "";
    };
    auto act_word = [&]() -> std::string {
      const char* word = ops::activation_info(l.act).spec_word;
      return *word ? std::string(" ") + word : "";
    };
    const ops::OpInfo& info = ops::op_info(l.kind);
    std::string line = info.spec_word;
    switch (info.spec_args) {
      case ops::SpecArgs::conv:
        line += std::string(" ") + (l.channels ? std::to_string(l.channels) : "channels") + " k" +
                std::to_string(l.kernel) + " s" + std::to_string(l.stride) + " " + size_word() +
                act_word() + (l.bias ? "" : " nobias");
        break;
      case ops::SpecArgs::window:
        line += " k" + std::to_string(l.kernel) + " s" + std::to_string(l.stride) + " " +
                size_word();
        break;
      case ops::SpecArgs::target: line += " " + size_word(); break;
      case ops::SpecArgs::nothing: break;
      case ops::SpecArgs::operand: line += " " + l.joins; break;
      case ops::SpecArgs::norm: line += act_word(); break;
    }
    if (!l.name.empty()) line += " as " + l.name;
    out += line + "\n";
  }
  return out;
}

}  // namespace cae::nn
