//! Statistics behind the drift marts: sign and binomial tests, Mann–Kendall with ties,
//! Theil–Sen slopes, and lag matching. Plain functions over slices, checked against
//! Python's `pymannkendall` in the integration tests.

/// Mann–Kendall trend test (Mann 1945, Kendall 1975), as `pymannkendall.original_test`:
/// the S score, its variance corrected for ties, the continuity-corrected z and the
/// two-sided p-value. A flat series has S = 0 and p = 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannKendall {
    pub s: f64,
    pub var_s: f64,
    pub z: f64,
    pub p_value: f64,
}

pub fn mann_kendall(x: &[f64]) -> MannKendall {
    let n = x.len();
    let mut s = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            s += (x[j] - x[i]).signum() * f64::from(u8::from(x[j] != x[i]));
        }
    }
    let mut sorted = x.to_vec();
    sorted.sort_by(f64::total_cmp);
    let nf = n as f64;
    let mut var_s = nf * (nf - 1.0) * (2.0 * nf + 5.0);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j < n && sorted[j] == sorted[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        var_s -= t * (t - 1.0) * (2.0 * t + 5.0);
        i = j;
    }
    var_s /= 18.0;
    let z = if s > 0.0 {
        (s - 1.0) / var_s.sqrt()
    } else if s < 0.0 {
        (s + 1.0) / var_s.sqrt()
    } else {
        0.0
    };
    MannKendall { s, var_s, z, p_value: 2.0 * (1.0 - normal_cdf(z.abs())) }
}

/// Theil–Sen slope: the median of the slopes between every pair of points (x at 0, 1, 2…).
pub fn theil_sen(x: &[f64]) -> f64 {
    let mut slopes = Vec::with_capacity(x.len() * x.len().saturating_sub(1) / 2);
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            slopes.push((x[j] - x[i]) / (j - i) as f64);
        }
    }
    median(&mut slopes).unwrap_or(0.0)
}

pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let m = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[m] } else { (values[m - 1] + values[m]) / 2.0 })
}

pub fn normal_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// P(X ≥ k) for X ~ Binomial(n, p).
pub fn binomial_upper_tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let log_choose = |i: u64| libm::lgamma(n as f64 + 1.0) - libm::lgamma(i as f64 + 1.0) - libm::lgamma((n - i) as f64 + 1.0);
    (k..=n)
        .map(|i| (log_choose(i) + i as f64 * p.ln() + (n - i) as f64 * (1.0 - p).ln()).exp())
        .sum::<f64>()
        .min(1.0)
}

/// Two-sided sign test: `positives` of `n` non-zero differences, against a fair coin.
pub fn sign_test(positives: u64, n: u64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let extreme = positives.max(n - positives);
    (2.0 * binomial_upper_tail(extreme, n, 0.5)).min(1.0)
}

/// The shift k (1..=max_lag) at which `system[d] == reference[d − k]` holds on the largest
/// share of days, with that share and the share at k = 0. Days where either side is missing
/// are skipped. Returns None when there are fewer than `min_days` comparable days.
pub fn best_lag(system: &[Option<i64>], reference: &[Option<i64>], max_lag: usize, min_days: usize) -> Option<LagMatch> {
    let share = |k: usize| {
        let (mut equal, mut days) = (0usize, 0usize);
        for d in k..system.len().min(reference.len()) {
            if let (Some(s), Some(r)) = (system[d], reference[d - k]) {
                days += 1;
                equal += usize::from(s == r);
            }
        }
        (days >= min_days).then(|| equal as f64 / days as f64)
    };
    let at_zero = share(0)?;
    let (lag, best) = (1..=max_lag).filter_map(|k| share(k).map(|s| (k, s))).max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
    Some(LagMatch { lag, share: best, share_at_zero: at_zero })
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LagMatch {
    pub lag: usize,
    pub share: f64,
    pub share_at_zero: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mann_kendall_known_values() {
        // Strictly increasing, n = 5: S = 10, var = 5·4·15/18, z = 9/√var.
        let mk = mann_kendall(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(mk.s, 10.0);
        assert!((mk.var_s - 50.0 / 3.0).abs() < 1e-12);
        assert!((mk.z - 9.0 / (50.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((mk.p_value - 0.027_486_336_110_7).abs() < 1e-9, "{}", mk.p_value);
        let flat = mann_kendall(&[3.0; 8]);
        assert_eq!((flat.s, flat.var_s, flat.p_value), (0.0, 0.0, 1.0));
    }

    #[test]
    fn ties_reduce_the_variance() {
        let mk = mann_kendall(&[1.0, 1.0, 2.0, 2.0, 3.0]);
        // n(n−1)(2n+5) = 300; two ties of 2 remove 2·1·9 each → (300 − 36)/18.
        assert!((mk.var_s - 264.0 / 18.0).abs() < 1e-12);
        assert_eq!(mk.s, 8.0);
    }

    #[test]
    fn theil_sen_is_robust_to_an_outlier() {
        assert_eq!(theil_sen(&[0.0, 1.0, 2.0, 30.0, 4.0]), 1.0);
        assert_eq!(theil_sen(&[5.0]), 0.0);
    }

    #[test]
    fn binomial_and_sign_tests() {
        assert!((binomial_upper_tail(3, 3, 0.5) - 0.125).abs() < 1e-12);
        assert!((binomial_upper_tail(1, 2, 0.1) - 0.19).abs() < 1e-12);
        assert!((sign_test(10, 10) - 2.0 / 1024.0).abs() < 1e-12);
        assert_eq!(sign_test(5, 10), 1.0);
    }

    #[test]
    fn lag_matching_finds_the_shift() {
        let reference: Vec<Option<i64>> = (0..30).map(|d| Some(100 - d * 2)).collect();
        let mut system = vec![None, None];
        system.extend(reference[..28].iter().copied());
        let m = best_lag(&system, &reference, 5, 10).unwrap();
        assert_eq!((m.lag, m.share, m.share_at_zero), (2, 1.0, 0.0));
    }
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, refined by one
/// Halley step to full double precision).
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
    const B: [f64; 5] = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let low = 0.02425;
    let x = if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// Safety stock against demand and lead-time uncertainty: z·√(L·σ_d² + d²·σ_L²). The
/// lead-time variance enters squared — σ_L², not σ_L.
pub fn safety_stock(z: f64, daily_demand: f64, demand_sd: f64, lead_time: f64, lead_time_sd: f64) -> f64 {
    z * (lead_time * demand_sd.powi(2) + daily_demand.powi(2) * lead_time_sd.powi(2)).sqrt()
}

#[cfg(test)]
mod planning_tests {
    use super::*;

    #[test]
    fn quantiles_invert_the_cdf() {
        for p in [0.001, 0.05, 0.5, 0.9, 0.95, 0.99, 0.999] {
            assert!((normal_cdf(normal_quantile(p)) - p).abs() < 1e-14, "{p}");
        }
        assert!((normal_quantile(0.95) - 1.6448536269514722).abs() < 1e-12);
    }

    #[test]
    fn lead_time_variance_enters_squared() {
        // d = 10/day, σ_d = 3, L = 9 days, σ_L = 2 days, z = 2:
        // √(9·9 + 100·4) = √481; the unsquared σ_L would give √(81 + 100·2) = √281.
        assert!((safety_stock(2.0, 10.0, 3.0, 9.0, 2.0) - 2.0 * 481f64.sqrt()).abs() < 1e-12);
    }
}
