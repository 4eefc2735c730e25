#include "master/attack/input_reconstruction.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "master/attack/png_writer.h"
#include "master/attack/weight_recovery.h"
#include "master/core/random.h"

namespace tempo::attack {

namespace {

/// Nearest-neighbour resize of one map.
std::vector<float> resize(const float* src, int64_t sh, int64_t sw, int64_t dh, int64_t dw) {
  std::vector<float> out(static_cast<size_t>(dh * dw));
  for (int64_t y = 0; y < dh; ++y)
    for (int64_t x = 0; x < dw; ++x) out[y * dw + x] = src[(y * sh / dh) * sw + x * sw / dw];
  return out;
}

/// Leading eigenvector of a symmetric c x c matrix (power iteration).
std::vector<double> leading_eigenvector(const std::vector<double>& m, int64_t c) {
  std::vector<double> v(static_cast<size_t>(c), 1.0), w(static_cast<size_t>(c));
  for (int it = 0; it < 200; ++it) {
    double n = 0;
    for (int64_t i = 0; i < c; ++i) {
      w[i] = 0;
      for (int64_t j = 0; j < c; ++j) w[i] += m[i * c + j] * v[j];
      n += w[i] * w[i];
    }
    n = std::sqrt(n);
    if (n == 0) break;
    for (int64_t i = 0; i < c; ++i) v[i] = w[i] / n;
  }
  return v;
}

void normalize01(std::vector<float>& img) {
  const auto [lo, hi] = std::minmax_element(img.begin(), img.end());
  const float l = *lo, h = *hi;
  for (float& v : img) v = h > l ? (v - l) / (h - l) : 0.5f;
}

double correlation(const std::vector<float>& a, const std::vector<float>& b) {
  const double n = static_cast<double>(a.size());
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) ma += a[i], mb += b[i];
  ma /= n, mb /= n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

/// The least-squares affine map of `est` onto `target`, clipped to [0, 1].
std::vector<float> fit(const std::vector<float>& est, const std::vector<float>& target) {
  const double n = static_cast<double>(est.size());
  double me = 0, mt = 0, cov = 0, var = 0;
  for (size_t i = 0; i < est.size(); ++i) me += est[i], mt += target[i];
  me /= n, mt /= n;
  for (size_t i = 0; i < est.size(); ++i) {
    cov += (est[i] - me) * (target[i] - mt);
    var += (est[i] - me) * (est[i] - me);
  }
  const double g = var > 0 ? cov / var : 0.0;
  std::vector<float> out(est.size());
  for (size_t i = 0; i < est.size(); ++i)
    out[i] = static_cast<float>(std::clamp(mt + g * (est[i] - me), 0.0, 1.0));
  return out;
}

}  // namespace

double psnr(const std::vector<float>& a, const std::vector<float>& b) {
  double mse = 0;
  for (size_t i = 0; i < a.size(); ++i) mse += (double{a[i]} - b[i]) * (double{a[i]} - b[i]);
  mse /= static_cast<double>(a.size());
  return mse > 0 ? 10.0 * std::log10(1.0 / mse) : 100.0;
}

double ssim(const std::vector<float>& a, const std::vector<float>& b, int64_t h, int64_t w) {
  const int64_t k = std::min<int64_t>({7, h, w});
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03, n = static_cast<double>(k * k);
  double total = 0;
  int64_t windows = 0;
  for (int64_t y = 0; y + k <= h; ++y)
    for (int64_t x = 0; x + k <= w; ++x) {
      double ma = 0, mb = 0, saa = 0, sbb = 0, sab = 0;
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < k; ++j) {
          const double va = a[(y + i) * w + x + j], vb = b[(y + i) * w + x + j];
          ma += va, mb += vb, saa += va * va, sbb += vb * vb, sab += va * vb;
        }
      ma /= n, mb /= n;
      const double va = saa / n - ma * ma, vb = sbb / n - mb * mb, cab = sab / n - ma * mb;
      total += ((2 * ma * mb + c1) * (2 * cab + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
      ++windows;
    }
  return windows ? total / static_cast<double>(windows) : 0.0;
}

Reconstruction reconstruct_inputs(const ViewReader& view, const RecordedLayer& layer,
                                  int64_t height, int64_t width, int max_images) {
  const Tensor x = load_tensor(view, layer.last().input);
  Reconstruction rec;
  rec.height = height;
  rec.width = width;
  if (layer.form == ProductForm::kChannelConv) {
    rec.method = "channel maps: sign and max normalisation, first principal component";
    const int64_t n = x.dim(0), c = x.dim(1), mh = x.dim(2), mw = x.dim(3), hw = mh * mw;
    std::vector<float> maps(static_cast<size_t>(x.numel()));
    for (int64_t b = 0; b < n; ++b)
      for (int64_t ch = 0; ch < c; ++ch) {
        const float* src = x.data() + (b * c + ch) * hw;
        double sum = 0, peak = 0;
        for (int64_t i = 0; i < hw; ++i) sum += src[i];
        for (int64_t i = 0; i < hw; ++i) peak = std::max(peak, std::abs(double{src[i]}));
        const double f = peak > 0 ? (sum < 0 ? -1.0 : 1.0) / peak : 0.0;
        for (int64_t i = 0; i < hw; ++i)
          maps[(b * c + ch) * hw + i] = static_cast<float>(src[i] * f);
      }
    // Channel covariance over every sample and position; combine by its leading eigenvector.
    std::vector<double> mean(static_cast<size_t>(c), 0.0), cov(static_cast<size_t>(c * c), 0.0);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t i = 0; i < hw; ++i) mean[ch] += maps[(b * c + ch) * hw + i];
    for (double& m : mean) m /= static_cast<double>(n * hw);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < hw; ++i)
        for (int64_t p = 0; p < c; ++p) {
          const double vp = maps[(b * c + p) * hw + i] - mean[p];
          for (int64_t q = 0; q < c; ++q)
            cov[p * c + q] += vp * (maps[(b * c + q) * hw + i] - mean[q]);
        }
    const std::vector<double> v = leading_eigenvector(cov, c);
    rec.count = std::min<int64_t>(n, max_images);
    for (int64_t b = 0; b < rec.count; ++b) {
      std::vector<float> img(static_cast<size_t>(hw), 0.0f);
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t i = 0; i < hw; ++i)
          img[i] += static_cast<float>(v[ch] * maps[(b * c + ch) * hw + i]);
      std::vector<float> big = resize(img.data(), mh, mw, height, width);
      normalize01(big);
      rec.images.insert(rec.images.end(), big.begin(), big.end());
    }
    return rec;
  }
  // Rows (patch positions) or columns (pixels) permuted: lay values out in received order.
  rec.method = "no placement recoverable: received order after sign and scale correction";
  const UnitInput u = unit_input(layer.form, x);
  const std::vector<int> e = row_exponents(u);
  std::vector<double> col_sum(static_cast<size_t>(u.units), 0.0);
  for (int64_t r = 0; r < u.rows; ++r)
    for (int64_t j = 0; j < u.units; ++j) col_sum[j] += u.at(r, j, 0);
  std::vector<float> values;
  if (layer.form == ProductForm::kPatchConv) {
    for (int64_t r = 0; r < u.rows; ++r) {  // one value per position
      double s = 0;
      for (int64_t j = 0; j < u.units; ++j) s += (col_sum[j] < 0 ? -1 : 1) * u.at(r, j, 0);
      values.push_back(static_cast<float>(std::ldexp(s, -e[r])));
    }
  } else {
    for (int64_t r = 0; r < u.rows; ++r)  // one value per column (pixel) of each sample
      for (int64_t j = 0; j < u.units; ++j)
        values.push_back(
            static_cast<float>(std::ldexp((col_sum[j] < 0 ? -1 : 1) * u.at(r, j, 0), -e[r])));
  }
  const int64_t per = height * width;
  rec.count = std::min<int64_t>(static_cast<int64_t>(values.size()) / per, max_images);
  for (int64_t b = 0; b < rec.count; ++b) {
    std::vector<float> img(values.begin() + b * per, values.begin() + (b + 1) * per);
    normalize01(img);
    rec.images.insert(rec.images.end(), img.begin(), img.end());
  }
  return rec;
}

ReconstructionScore score_reconstruction(const Reconstruction& rec, const data::Dataset& originals,
                                         int64_t candidates, const std::string& png_path) {
  ReconstructionScore score;
  const int64_t oh = originals.height(), ow = originals.width(), ch = originals.channels();
  const int64_t cand =
      std::min<int64_t>(candidates > 0 ? candidates : originals.size(), originals.size());
  if (rec.count == 0 || cand == 0) return score;
  // Originals as greyscale [0, 1].
  std::vector<std::vector<float>> orig(static_cast<size_t>(cand));
  for (int64_t i = 0; i < cand; ++i) {
    orig[i].assign(static_cast<size_t>(oh * ow), 0.0f);
    const uint8_t* p = originals.image(i);
    for (int64_t c = 0; c < ch; ++c)
      for (int64_t k = 0; k < oh * ow; ++k) orig[i][k] += p[c * oh * ow + k] / (255.0f * ch);
  }
  // Crop each estimate to the dataset's size (inputs may be padded around the centre).
  const int64_t top = (rec.height - oh) / 2, left = (rec.width - ow) / 2;
  Rng rng(12345);
  std::vector<int64_t> shuffle(static_cast<size_t>(oh * ow));
  std::iota(shuffle.begin(), shuffle.end(), 0);
  for (int64_t i = oh * ow - 1; i > 0; --i)
    std::swap(shuffle[i],
              shuffle[static_cast<int64_t>(rng.next_u64() % static_cast<uint64_t>(i + 1))]);
  std::vector<std::pair<std::vector<float>, std::vector<float>>> examples;
  for (int64_t r = 0; r < rec.count; ++r) {
    std::vector<float> est(static_cast<size_t>(oh * ow));
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x) {
        const int64_t sy = std::clamp<int64_t>(y + top, 0, rec.height - 1);
        const int64_t sx = std::clamp<int64_t>(x + left, 0, rec.width - 1);
        est[y * ow + x] = rec.images[(r * rec.height + sy) * rec.width + sx];
      }
    std::vector<float> ctrl(est.size());
    for (size_t k = 0; k < est.size(); ++k) ctrl[k] = est[static_cast<size_t>(shuffle[k])];
    for (int pass = 0; pass < 2; ++pass) {
      const std::vector<float>& e = pass == 0 ? est : ctrl;
      int64_t best = 0;
      double best_c = -1;
      for (int64_t i = 0; i < cand; ++i) {
        const double c = std::abs(correlation(e, orig[i]));
        if (c > best_c) best_c = c, best = i;
      }
      const std::vector<float> fitted = fit(e, orig[best]);
      const double p = psnr(fitted, orig[best]), s = ssim(fitted, orig[best], oh, ow);
      if (pass == 0) {
        score.psnr += p, score.ssim += s;
        if (examples.size() < 8) examples.emplace_back(orig[best], fitted);
      } else {
        score.control_psnr += p, score.control_ssim += s;
      }
    }
    ++score.scored;
  }
  const double n = static_cast<double>(score.scored);
  score.psnr /= n, score.ssim /= n, score.control_psnr /= n, score.control_ssim /= n;
  if (!png_path.empty() && !examples.empty()) {
    const int64_t z = 4, gap = 4, cols = 2;
    const int64_t w = cols * ow * z + gap,
                  h = static_cast<int64_t>(examples.size()) * (oh * z + gap);
    std::vector<uint8_t> px(static_cast<size_t>(w * h), 128);
    for (size_t e = 0; e < examples.size(); ++e)
      for (int64_t col = 0; col < cols; ++col) {
        const std::vector<float>& img = col == 0 ? examples[e].first : examples[e].second;
        for (int64_t y = 0; y < oh * z; ++y)
          for (int64_t x = 0; x < ow * z; ++x)
            px[(static_cast<int64_t>(e) * (oh * z + gap) + y) * w + col * (ow * z + gap) + x] =
                static_cast<uint8_t>(std::lround(255.0f * img[(y / z) * ow + x / z]));
      }
    write_png_gray(png_path, w, h, px);
  }
  return score;
}

}  // namespace tempo::attack
