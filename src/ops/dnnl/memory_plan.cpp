// finish(): the step lists in order, the memory plan derived from them, the parameter buffers.
#include "ops/dnnl/executor_impl.h"

#include <algorithm>
#include <cstdio>
#include <map>

namespace cae::ops::dnnl_exec {

void DnnlExecutor::finish() {
  const int n_ops = int(net_.ops.size());
  const memory last = act_.back();
  const Md out_md = plain_md(net_.batch, net_.output());
  memory out = last;
  if (last.get_desc() != out_md) {
    out = new_memory(out_md);
    op_fwd_[n_ops - 1].push_back(reorder_step(last, out, -1));
  }
  for (auto& steps : op_fwd_)
    for (auto& s : steps) forward_steps_.push_back(std::move(s));
  for (int i = n_ops - 1; i >= 0; --i)
    for (auto& s : op_bwd_[i]) backward_steps_.push_back(std::move(s));
  op_fwd_.clear();
  op_bwd_.clear();

  output_is_last_act_ = out.get() == last.get();
  make_memory_plan();
  output_ptr_ = static_cast<const float*>(out.get_data_handle());

  // Weights first, then biases, packed without gaps: blocked weight sizes are multiples of 16
  // floats, so every weight region stays 64-byte aligned, and every cell of grads() is written
  // by backward().
  for (bool weights : {true, false})
    for (ParamSlot& s : slots_)
      if ((s.md.data.ndims == 4) == weights) {
        s.offset = flat_size_;
        flat_size_ += s.md.get_size() / sizeof(float);
      }
  params_ = FloatBuffer(flat_size_);
  grads_ = FloatBuffer(flat_size_);
  for (const ParamSlot& s : slots_) {
    s.param.set_data_handle(params_.data() + s.offset);
    s.grad.set_data_handle(grads_.data() + s.offset);
  }

  std::size_t scratch_bytes = 0;
  for (auto* list : {&forward_steps_, &backward_steps_, &input_grad_steps_})
    for (const Step& s : *list) scratch_bytes = std::max(scratch_bytes, s.scratchpad_bytes);
  if (scratch_bytes > 0) {
    scratchpad_ =
        memory(Md({dnnl::memory::dim(scratch_bytes)}, memory::data_type::u8, Tag::x), engine_);
    for (auto* list : {&forward_steps_, &backward_steps_, &input_grad_steps_})
      for (Step& s : *list)
        if (s.scratchpad_bytes > 0) {
          s.mems.push_back(scratchpad_);
          s.args.push_back({DNNL_ARG_SCRATCHPAD, scratchpad_.get()});
        }
  }
}

// One pass over the steps in execution order (forward, backward, input gradient) gives each
// planned memory its span: the first and the last step that lists it. Activations are kept
// through the whole forward pass (read_activation may ask for any of them until backward), and
// the last one to the end when it is output() itself. Then, in order of first use, a memory
// takes a buffer none of whose memories' spans overlaps its own: among those of activations the
// smallest that is large enough, else the largest of the gradients' buffers (grown if need be),
// else a new one. Spans are closed, so a step never reads and writes through one buffer unless
// it is one memory (the in-place ReLU backward).
void DnnlExecutor::make_memory_plan() {
  std::map<dnnl_memory_t, int> row_of;
  plan_.rows.clear();
  for (const Planned& p : planned_) {
    row_of[p.mem.get()] = int(plan_.rows.size());
    plan_.rows.push_back({p.what, p.mem.get_desc().get_size(), -1, -1, -1});
  }
  plan_.forward_steps = int(forward_steps_.size());
  plan_.backward_steps = int(backward_steps_.size());
  plan_.input_grad_steps = int(input_grad_steps_.size());
  const int total = plan_.forward_steps + plan_.backward_steps + plan_.input_grad_steps;
  int t = 0;
  for (auto* list : {&forward_steps_, &backward_steps_, &input_grad_steps_})
    for (const Step& s : *list) {
      for (const memory& m : s.mems)
        if (auto it = row_of.find(m.get()); it != row_of.end()) {
          DnnlPlanRow& r = plan_.rows[it->second];
          if (r.first < 0) r.first = t;
          r.last = t;
        }
      ++t;
    }
  for (std::size_t k = 0; k < planned_.size(); ++k) {
    DnnlPlanRow& r = plan_.rows[k];
    if (!planned_[k].activation) continue;
    if (r.first < 0) r.first = 0;
    r.last = std::max(r.last, plan_.forward_steps - 1);
  }
  if (output_is_last_act_) plan_.rows[row_of.at(act_.back().get())].last = total;

  std::vector<int> order(plan_.rows.size());
  for (int k = 0; k < int(order.size()); ++k) order[k] = k;
  std::ranges::stable_sort(order,
                           [&](int a, int b) { return plan_.rows[a].first < plan_.rows[b].first; });
  struct Buffer {
    std::size_t bytes = 0;
    int busy_until = -1;  // the last step of the spans it holds
    bool activation = false;
  };
  std::vector<Buffer> buffers;
  for (int k : order) {
    DnnlPlanRow& r = plan_.rows[k];
    if (r.first < 0) continue;  // no step touches it: no buffer
    int best = -1;
    if (options_.share_buffers && !planned_[k].activation) {
      for (int b = 0; b < int(buffers.size()); ++b)
        if (buffers[b].activation && buffers[b].busy_until < r.first &&
            buffers[b].bytes >= r.bytes && (best < 0 || buffers[b].bytes < buffers[best].bytes))
          best = b;
      if (best < 0)
        for (int b = 0; b < int(buffers.size()); ++b)
          if (!buffers[b].activation && buffers[b].busy_until < r.first &&
              (best < 0 || buffers[b].bytes > buffers[best].bytes))
            best = b;
    }
    if (best < 0) {
      best = int(buffers.size());
      buffers.push_back({0, -1, planned_[k].activation});
    }
    buffers[best].bytes = std::max(buffers[best].bytes, r.bytes);
    buffers[best].busy_until = r.last;
    r.buffer = best;
  }
  plan_.buffer_bytes.clear();
  plan_.buffer_holds_activation.clear();
  buffers_.clear();
  for (const Buffer& b : buffers) {
    plan_.buffer_bytes.push_back(b.bytes);
    plan_.buffer_holds_activation.push_back(b.activation);
    buffers_.emplace_back(b.bytes / sizeof(float));
  }
  for (std::size_t k = 0; k < planned_.size(); ++k)
    if (plan_.rows[k].buffer >= 0)
      planned_[k].mem.set_data_handle(buffers_[plan_.rows[k].buffer].data());
  plan_.rewrites.clear();
  for (int i = 0; i < int(net_.ops.size()); ++i)
    if (relu_by_pool_[i])
      plan_.rewrites.push_back("op " + std::to_string(i) + " (" + op_kind_name(net_.ops[i].kind) +
                               "): its ReLU's gradient is applied by op " + std::to_string(i + 1) +
                               " (maxpool) to the pooled gradient; its output is not read by "
                               "backward");
}

}  // namespace cae::ops::dnnl_exec

namespace cae::ops {

using dnnl_exec::as_dnnl;
using dnnl_exec::DnnlExecutor;

std::string format_dnnl_plan(const DnnlPlan& plan) {
  auto mb = [](std::size_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f MB", double(bytes) / 1e6);
    return std::string(text);
  };
  std::string out = "steps: " + std::to_string(plan.forward_steps) + " forward (0-" +
                    std::to_string(plan.forward_steps - 1) + "), " +
                    std::to_string(plan.backward_steps) + " backward, " +
                    std::to_string(plan.input_grad_steps) + " input gradient\n";
  for (const std::string& r : plan.rewrites) out += "rewrite: " + r + "\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-36s %12s %6s %6s %7s\n", "memory", "bytes", "first", "last",
                "buffer");
  out += line;
  const int end = plan.forward_steps + plan.backward_steps + plan.input_grad_steps;
  for (const DnnlPlanRow& r : plan.rows) {
    const std::string last = r.last >= end ? "end" : std::to_string(r.last);
    char buffer[16] = "none";
    if (r.buffer >= 0) std::snprintf(buffer, sizeof buffer, "B%d", r.buffer);
    std::snprintf(line, sizeof line, "%-36s %12zu %6d %6s %7s\n", r.what.c_str(), r.bytes, r.first,
                  last.c_str(), buffer);
    out += line;
  }
  std::size_t total = 0;
  for (std::size_t b = 0; b < plan.buffer_bytes.size(); ++b) {
    total += plan.buffer_bytes[b];
    std::snprintf(line, sizeof line, "B%zu: %s (%s)\n", b, mb(plan.buffer_bytes[b]).c_str(),
                  plan.buffer_holds_activation[b] ? "an activation's" : "gradients only");
    out += line;
  }
  out += "total: " + mb(total) + " in " + std::to_string(plan.buffer_bytes.size()) +
         " buffers, for " + std::to_string(plan.rows.size()) + " memories\n";
  return out;
}

}  // namespace cae::ops
