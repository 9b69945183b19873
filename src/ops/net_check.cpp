#include "ops/net_check.h"

#include "cae/error.h"

namespace cae::ops {
namespace {


bool positive(const Dims& d) { return d.c > 0 && d.h > 0 && d.w > 0; }

[[noreturn]] void fail(int index, const OpDesc& op, const std::string& what) {
  throw Error("net description: op " + std::to_string(index) + " (" + op_kind_name(op.kind) +
              "): " + what);
}

void check_window(int index, const OpDesc& op) {
  if (op.kernel < 1 || op.stride < 1)
    fail(index, op,
         "kernel and stride must be at least 1, found kernel " + std::to_string(op.kernel) +
             ", stride " + std::to_string(op.stride));
  if (op.pad_top < 0 || op.pad_left < 0 || op.pad_bottom < 0 || op.pad_right < 0)
    fail(index, op, "padding must not be negative");
}

// The output dims an op must have, given its input and geometry.
Dims expected_out(int index, const OpDesc& op, Dims other) {
  const Dims in = op.in;
  const int k = op.kernel, s = op.stride;
  const int rows = in.h + op.pad_top + op.pad_bottom, cols = in.w + op.pad_left + op.pad_right;
  switch (op_info(op.kind).shape) {
    case ShapeRule::window:
    case ShapeRule::pool: {
      const bool pool = op_info(op.kind).shape == ShapeRule::pool;
      check_window(index, op);
      if (rows < k || cols < k)
        fail(index, op,
             "padded input " + std::to_string(rows) + "x" + std::to_string(cols) +
                 " is smaller than the kernel " + std::to_string(k));
      if (pool && (op.pad_top >= k || op.pad_left >= k || op.pad_bottom >= k || op.pad_right >= k))
        // A window of padding only would have no cell to take the maximum of.
        fail(index, op, "padding must be smaller than the kernel " + std::to_string(k));
      return {pool ? in.c : op.out.c, (rows - k) / s + 1, (cols - k) / s + 1};
    }
    case ShapeRule::transposed:
      check_window(index, op);
      return {op.out.c, (in.h - 1) * s + k - op.pad_top - op.pad_bottom,
              (in.w - 1) * s + k - op.pad_left - op.pad_right};
    case ShapeRule::resize:
      return {in.c, op.out.h, op.out.w};
    case ShapeRule::same:
      return in;
    case ShapeRule::concat:
      return {in.c + other.c, in.h, in.w};
  }
  fail(index, op, "unknown op kind " + std::to_string(int(op.kind)));
}

}  // namespace

std::string dims_string(const Dims& d) {
  return std::to_string(d.c) + "x" + std::to_string(d.h) + "x" + std::to_string(d.w);
}

void check_net_desc(const NetDesc& net) {
  if (net.batch < 1)
    throw Error("net description: batch must be at least 1, found " + std::to_string(net.batch));
  if (!positive(net.input))
    throw Error("net description: input dims must be positive, found " + dims_string(net.input));
  if (net.ops.empty()) throw Error("net description: no ops");
  Dims previous = net.input;
  for (int i = 0; i < int(net.ops.size()); ++i) {
    const OpDesc& op = net.ops[i];
    if (op.in != previous)
      fail(i, op,
           "input dims expected " + dims_string(previous) + " (" +
               (i ? "output of op " + std::to_string(i - 1) : std::string("net input")) +
               "), found " + dims_string(op.in));
    if (!positive(op.out))
      fail(i, op, "output dims must be positive, found " + dims_string(op.out));
    Dims other{};
    if (is_join(op.kind)) {
      // The second operand must be an earlier activation than the first: a chain with skips.
      if (op.other < OpDesc::kNetInput || op.other >= i - 1)
        fail(i, op,
             "the second operand must be the net input (-1) or the output of an op before " +
                 std::to_string(i - 1) + ", found " + std::to_string(op.other));
      other = net.act_dims(op.other);
      if (other.h != op.in.h || other.w != op.in.w ||
          (op_info(op.kind).shape != ShapeRule::concat && other.c != op.in.c))
        fail(i, op,
             "operands of different shapes: " + dims_string(op.in) + " and " + dims_string(other) +
                 " (op " + std::to_string(op.other) + ")");
    } else if (op.other != OpDesc::kNoOperand) {
      fail(i, op, "only a join (concat, add, sub) reads a second operand");
    }
    const Dims expected = expected_out(i, op, other);
    if (op.out != expected)
      fail(i, op,
           "output dims expected " + dims_string(expected) + ", found " + dims_string(op.out));
    if (op.act != Activation::none && !op_info(op.kind).fuses_activation)
      // Elsewhere it would be silently dropped.
      fail(i, op, "a fused activation is only allowed on conv and tconv");
    previous = op.out;
  }
}

}  // namespace cae::ops
