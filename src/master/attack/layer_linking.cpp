#include "master/attack/layer_linking.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>

#include "master/attack/weight_recovery.h"
#include "master/core/blas.h"
#include "master/nn/conv2d.h"
#include "master/nn/linear.h"
#include "master/nn/plain_compute.h"

namespace tempo::attack {

namespace {

/// Standardises each column of x [rows, cols] in place (mean 0, unit norm); constant columns
/// become 0.
void standardize_columns(std::vector<float>& x, int64_t rows, int64_t cols) {
  for (int64_t c = 0; c < cols; ++c) {
    double m = 0, s = 0;
    for (int64_t r = 0; r < rows; ++r) m += x[r * cols + c];
    m /= static_cast<double>(rows);
    for (int64_t r = 0; r < rows; ++r) s += (x[r * cols + c] - m) * (x[r * cols + c] - m);
    const double inv = s > 1e-30 ? 1.0 / std::sqrt(s) : 0.0;
    for (int64_t r = 0; r < rows; ++r)
      x[r * cols + c] = static_cast<float>((x[r * cols + c] - m) * inv);
  }
}

double zero_fraction(const float* row, int64_t n) {
  int64_t z = 0;
  for (int64_t i = 0; i < n; ++i) z += row[i] == 0.0f;
  return static_cast<double>(z) / static_cast<double>(n);
}

/// The module at a dotted path below `root` ("" is root itself), or null.
nn::Module* find_module(nn::Module& root, const std::string& path) {
  nn::Module* m = &root;
  size_t start = 0;
  while (m && start < path.size()) {
    const size_t dot = std::min(path.find('.', start), path.size());
    const std::string name = path.substr(start, dot - start);
    std::vector<std::pair<std::string, nn::Module*>> kids;
    m->children(kids);
    nn::Module* next = nullptr;
    for (const auto& [n, k] : kids)
      if (n == name) next = k;
    m = next;
    start = dot + 1;
  }
  return m;
}

}  // namespace

std::vector<int64_t> greedy_assignment(const std::vector<float>& score, int64_t n) {
  const int64_t top = std::min<int64_t>(n, 48);
  std::vector<std::pair<float, int64_t>> cand;  // (score, row*n+col)
  cand.reserve(static_cast<size_t>(n * top));
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    std::iota(idx.begin(), idx.end(), 0);
    const float* s = score.data() + r * n;
    std::nth_element(idx.begin(), idx.begin() + (top - 1), idx.end(),
                     [s](int64_t a, int64_t b) { return s[a] > s[b]; });
    for (int64_t k = 0; k < top; ++k) cand.emplace_back(s[idx[k]], r * n + idx[k]);
  }
  std::sort(cand.begin(), cand.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<int64_t> col_of(static_cast<size_t>(n), -1);
  std::vector<char> used(static_cast<size_t>(n), 0);
  for (const auto& [sc, rc] : cand) {
    const int64_t r = rc / n, c = rc % n;
    if (col_of[r] >= 0 || used[c]) continue;
    col_of[r] = c;
    used[c] = 1;
  }
  int64_t next = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (col_of[r] >= 0) continue;
    while (used[next]) ++next;
    col_of[r] = next;
    used[next] = 1;
  }
  return col_of;
}

Link link_layers(const ViewReader& view, nn::Module& root, const RecordedLayer& p,
                 const RecordedLayer& q, int rounds) {
  Link link;
  if (p.form == ProductForm::kPatchConv || q.form == ProductForm::kPatchConv) {
    link.why_not = "patch mode hides spatial positions";
    return link;
  }
  // P and Q must be children of one module (the model, or e.g. a residual block's body), so
  // that what runs between them is the modules listed between them.
  const size_t dot_p = p.path.rfind('.'), dot_q = q.path.rfind('.');
  const std::string parent_p = dot_p == std::string::npos ? "" : p.path.substr(0, dot_p);
  const std::string parent_q = dot_q == std::string::npos ? "" : q.path.substr(0, dot_q);
  nn::Module* parent = parent_p == parent_q ? find_module(root, parent_p) : nullptr;
  std::vector<std::pair<std::string, nn::Module*>> kids;
  if (parent) parent->children(kids);
  auto pos = [&](const std::string& path, size_t dot) {
    const std::string name = dot == std::string::npos ? path : path.substr(dot + 1);
    for (size_t i = 0; i < kids.size(); ++i)
      if (kids[i].first == name) return static_cast<int64_t>(i);
    return int64_t{-1};
  };
  const int64_t ip = pos(p.path, dot_p), iq = pos(q.path, dot_q);
  if (ip < 0 || iq <= ip) {
    link.why_not = "layers are not children of one module, in order (e.g. across a residual add)";
    return link;
  }
  // P's last training forward, and Q's first forward after it (the same step).
  const ForwardRecord& fp = p.last();
  const ForwardRecord* fq = nullptr;
  for (const auto& f : q.forwards)
    if (f.input > fp.weight) {
      fq = &f;
      break;
    }
  if (!fq) {
    link.why_not = "no forward of the second layer after the first";
    return link;
  }
  Tensor xp = load_tensor(view, fp.input), wp = load_tensor(view, fp.weight);
  Tensor y;
  if (p.form == ProductForm::kLinear) {
    y = Tensor({xp.dim(0), wp.dim(1)});
    blas::gemm(false, false, xp.dim(0), wp.dim(1), xp.dim(1), 1.0f, xp.data(), wp.data(), 0.0f,
               y.data());
  } else {
    auto* conv = dynamic_cast<nn::Conv2d*>(p.module);
    y = nn::plain_compute().conv2d(xp, wp, conv->geometry(), nullptr);
  }
  // Undo the per-sample scales r (shared by P's input and output rows).
  const std::vector<int> e = row_exponents(unit_input(p.form, xp));
  const int64_t n = y.dim(0), per = y.numel() / n;
  for (int64_t b = 0; b < n; ++b) {
    const float f = static_cast<float>(std::ldexp(1.0, -e[b]));
    for (int64_t k = 0; k < per; ++k) y[b * per + k] *= f;
  }
  // The layers in between, as the attacker's own copies (batch statistics, unit affine).
  const bool was_training = root.training();
  root.train(true);
  for (int64_t i = ip + 1; i < iq; ++i) y = kids[i].second->forward(y);
  root.train(was_training);

  const Tensor xq = load_tensor(view, fq->input);
  const UnitInput uq = unit_input(q.form, xq);
  const int64_t units = uq.units, q_len = uq.q, width = units * q_len;
  if (uq.rows != n || y.numel() != n * width) {
    link.why_not = "shapes of the two layers' batches differ";
    return link;
  }
  // Q's input with its signs and per-sample scales undone (zeros stay zeros).
  std::vector<float> a(uq.a);
  {
    std::vector<double> sum(static_cast<size_t>(units), 0.0);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t k = 0; k < width; ++k) sum[k / q_len] += a[r * width + k];
    const std::vector<int> eq = row_exponents(uq);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t k = 0; k < width; ++k)
        a[r * width + k] *= static_cast<float>(std::ldexp(sum[k / q_len] < 0 ? -1.0 : 1.0, -eq[r]));
  }
  std::vector<float> f(y.data(), y.data() + y.numel());

  // Samples by zero fraction first.
  std::vector<int64_t> ra(static_cast<size_t>(n)), rf(static_cast<size_t>(n));
  std::iota(ra.begin(), ra.end(), 0);
  std::iota(rf.begin(), rf.end(), 0);
  std::vector<double> za(static_cast<size_t>(n)), zf(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    za[r] = zero_fraction(a.data() + r * width, width);
    zf[r] = zero_fraction(f.data() + r * width, width);
  }
  std::sort(ra.begin(), ra.end(), [&](int64_t x, int64_t y2) { return za[x] < za[y2]; });
  std::sort(rf.begin(), rf.end(), [&](int64_t x, int64_t y2) { return zf[x] < zf[y2]; });
  std::vector<int64_t> sample_of(static_cast<size_t>(n));  // Q's sample r is F's sample_of[r]
  for (int64_t k = 0; k < n; ++k) sample_of[ra[k]] = rf[k];

  // Per-sample features for unit matching: each unit is a vector over (sample, q).
  // Unit-major copies: au[j][(r, t)].
  auto unit_major = [&](const std::vector<float>& m, const std::vector<int64_t>* rows) {
    std::vector<float> out(static_cast<size_t>(units * n * q_len));
    for (int64_t r = 0; r < n; ++r) {
      const int64_t src = rows ? (*rows)[r] : r;
      for (int64_t j = 0; j < units; ++j)
        for (int64_t t = 0; t < q_len; ++t)
          out[(r * q_len + t) * units + j] = m[(src * units + j) * q_len + t];
    }
    return out;  // [(n·q), units]: column j is unit j
  };
  std::vector<int64_t> unit_of(static_cast<size_t>(units));
  std::vector<float> score;
  std::vector<int64_t> prev_samples;
  for (int round = 0; round < rounds; ++round) {
    // Units: correlation over the matched samples.
    std::vector<float> am = unit_major(a, nullptr), fm = unit_major(f, &sample_of);
    const int64_t len = n * q_len;
    standardize_columns(am, len, units);
    standardize_columns(fm, len, units);
    score.assign(static_cast<size_t>(units * units), 0.0f);
    blas::gemm(true, false, units, units, len, 1.0f, am.data(), fm.data(), 0.0f, score.data());
    unit_of = greedy_assignment(score, units);
    double mc = 0;
    for (int64_t j = 0; j < units; ++j) mc += score[j * units + unit_of[j]];
    link.mean_correlation = mc / static_cast<double>(units);
    // Samples: correlation over the matched units (units standardised over samples).
    std::vector<float> as(a), fs(f);
    standardize_columns(as, n, width);
    standardize_columns(fs, n, width);
    std::vector<float> fa(static_cast<size_t>(n * width));  // F in Q's unit order
    for (int64_t b = 0; b < n; ++b)
      for (int64_t j = 0; j < units; ++j)
        std::memcpy(&fa[(b * units + j) * q_len], &fs[(b * units + unit_of[j]) * q_len],
                    sizeof(float) * static_cast<size_t>(q_len));
    std::vector<float> ss(static_cast<size_t>(n * n));
    blas::gemm(false, true, n, n, width, 1.0f, as.data(), fa.data(), 0.0f, ss.data());
    prev_samples = sample_of;
    sample_of = greedy_assignment(ss, n);
  }
  int64_t same = 0;
  for (int64_t r = 0; r < n; ++r) same += prev_samples[r] == sample_of[r];
  link.sample_agreement = static_cast<double>(same) / static_cast<double>(n);
  link.unit_of = std::move(unit_of);
  link.linked = true;
  return link;
}

}  // namespace tempo::attack
