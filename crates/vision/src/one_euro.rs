//! The One Euro filter (Casiez, Roussel and Vogel, CHI 2012) as MediaPipe's landmark smoothing
//! applies it: a low-pass filter whose cutoff rises with the point's speed, so a still point
//! stops jittering and a moving one does not lag. Speeds are measured relative to the size of
//! the thing the points belong to (MediaPipe's `value_scale` = 1 / object scale), so the same
//! settings suit a person near the camera and one far away.

use std::f64::consts::TAU;

/// MediaPipe's pose landmark smoothing (`pose_landmark_filtering`): min_cutoff 0.05 Hz,
/// beta 80, derivate_cutoff 1 Hz.
pub(crate) const MEDIAPIPE_POSE: Settings = Settings {
    min_cutoff: 0.05,
    beta: 80.0,
    derivate_cutoff: 1.0,
};

/// A filter's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Settings {
    /// Cutoff frequency at rest, in Hz: lower is smoother and lags more.
    pub(crate) min_cutoff: f64,
    /// How fast the cutoff rises with speed (in object sizes per second).
    pub(crate) beta: f64,
    /// Cutoff of the speed estimate, in Hz.
    pub(crate) derivate_cutoff: f64,
}

/// `alpha` of an exponential low-pass filter with `cutoff` Hz sampled at `rate` Hz.
fn alpha(cutoff: f64, rate: f64) -> f64 {
    let tau = 1.0 / (TAU * cutoff);
    1.0 / (1.0 + tau * rate)
}

/// One scalar's filter.
#[derive(Debug, Clone, Default)]
pub(crate) struct OneEuro {
    /// (last raw value, last filtered value, last filtered speed)
    last: Option<(f64, f64, f64)>,
}

impl OneEuro {
    /// Filters `value` sampled at `rate` Hz; `scale` is the object's size in `value`'s unit.
    pub(crate) fn apply(&mut self, value: f64, rate: f64, scale: f64, s: &Settings) -> f64 {
        let Some((raw, filtered, speed)) = self.last else {
            self.last = Some((value, value, 0.0));
            return value;
        };
        let raw_speed = (value - raw) / scale.max(1e-6) * rate;
        let a_speed = alpha(s.derivate_cutoff, rate);
        let speed = a_speed * raw_speed + (1.0 - a_speed) * speed;
        let cutoff = s.min_cutoff + s.beta * speed.abs();
        let a = alpha(cutoff, rate);
        let out = a * value + (1.0 - a) * filtered;
        self.last = Some((value, out, speed));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_at_rest_shrinks_and_a_steady_move_is_followed() {
        let s = MEDIAPIPE_POSE;
        // A point at rest at 100 px with ±2 px jitter, on an object 200 px tall, at 25 fps.
        let mut f = OneEuro::default();
        let mut spread: f64 = 0.0;
        for i in 0..100 {
            let jitter = if i % 2 == 0 { 2.0 } else { -2.0 };
            let out = f.apply(100.0 + jitter, 25.0, 200.0, &s);
            if i > 20 {
                spread = spread.max((out - 100.0).abs());
            }
        }
        assert!(spread < 1.0, "jitter left: ±{spread:.2} px of ±2");

        // A point moving 10 px a frame: after settling it lags by under 10 px.
        let mut f = OneEuro::default();
        let mut lag = 0.0;
        for i in 0..50 {
            let value = 10.0 * f64::from(i);
            lag = value - f.apply(value, 25.0, 200.0, &s);
        }
        assert!((0.0..10.0).contains(&lag), "lag {lag:.2} px");
    }
}
