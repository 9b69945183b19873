// Learning-rate schedules: the learning rate of each epoch, from --lr and one text such as
// 'step every=30 gamma=0.1' (--lr-schedule). The default, constant, keeps --lr for every epoch.
#pragma once

#include <limits>
#include <string>

namespace cae::train {

enum class LrScheduleKind { constant, step, cosine, plateau };

struct LrSchedule {
  LrScheduleKind kind = LrScheduleKind::constant;
  int every = 1;        // step: epochs between decays
  double gamma = 0.1;   // step: factor per decay
  double factor = 0.1;  // plateau: factor per reduction
  int patience = 10;    // plateau: epochs without a better test loss before a reduction
  double min_lr = 0;    // cosine: the last epoch's lr; plateau: the floor
  bool is_constant() const { return kind == LrScheduleKind::constant; }
};

// Requires text of one of the forms
//   constant | step every=N [gamma=G] | cosine [min=M] | plateau [factor=F] [patience=P] [min=M]
// (N, P >= 1; G, F in (0, 1]; M >= 0). Ensures the schedule it names, defaults for the
// keys left out; throws cae::Error naming the word it could not read.
LrSchedule parse_lr_schedule(const std::string& text);

// Requires nothing. Throws cae::Error when s cannot run from the starting lr base_lr (--lr): a
// floor (cosine's or plateau's min) at or above it, which cosine would climb to and plateau
// could never reduce to. Compared as the optimizer's float, so --lr 0.001 and min=0.001 are one
// rate. The text alone cannot say (parse_lr_schedule); a run checks it (check_run).
void check_lr_schedule(const LrSchedule& s, float base_lr);

// Ensures the canonical text of s, every key written: parse_lr_schedule(format(s)) == s.
std::string format_lr_schedule(const LrSchedule& s);

// What a schedule carries from epoch to epoch (plateau's; the others are functions of the
// epoch). Recorded in checkpoints so that a resumed run continues exactly.
struct LrState {
  double best = std::numeric_limits<double>::infinity();  // the lowest test loss so far
  int since = 0;  // epochs since the loss last improved on best
  double lr = 0;  // plateau's current learning rate
};

// The state of a run that has not started: plateau's lr is base_lr.
LrState initial_lr_state(double base_lr);

// Requires 1 <= epoch <= epochs. Ensures the learning rate of that epoch:
//   constant: base; step: base * gamma^floor((epoch-1)/every);
//   cosine: min + (base-min) (1 + cos(pi (epoch-1)/(epochs-1)))/2 (base when epochs == 1);
//   plateau: state.lr.
double lr_of_epoch(const LrSchedule& s, double base_lr, int epoch, int epochs,
                   const LrState& state);

// Ensures state updated by the test loss of the epoch just ended: for plateau, a loss below best
// becomes the best; otherwise after `patience` such epochs lr becomes max(lr * factor, min) and
// the count restarts. Other schedules leave state as it is.
void end_lr_epoch(const LrSchedule& s, double test_loss, LrState& state);

// The state as text ("best=B since=S lr=L", exact round trip) and back; parse throws cae::Error.
std::string format_lr_state(const LrState& state);
LrState parse_lr_state(const std::string& text);

}  // namespace cae::train
