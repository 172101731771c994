//! What a video file holds, read by `ffprobe` before any frame is decoded: the frame size the
//! decoder will produce (after the rotation FFmpeg applies), the frame rate, the frame count
//! and the audio stream's codec.

use std::path::Path;
use std::process::Command;

use serde::Deserialize;

use crate::process::{program, stderr_tail};
use crate::{Result, VideoError};

/// A frame rate as FFmpeg writes it, `num/den` frames per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRate {
    /// Numerator.
    pub num: u32,
    /// Denominator (> 0).
    pub den: u32,
}

impl FrameRate {
    /// Frames per second.
    pub fn fps(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }

    /// Parses `"30000/1001"`; `None` for `0/0` and anything not a positive rate.
    fn parse(text: &str) -> Option<Self> {
        let (num, den) = text.split_once('/')?;
        let (num, den) = (num.trim().parse().ok()?, den.trim().parse().ok()?);
        (num > 0 && den > 0).then_some(Self { num, den })
    }
}

impl std::fmt::Display for FrameRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// A video file's facts.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Width of the decoded (upright) frames.
    pub width: u32,
    /// Height of the decoded (upright) frames.
    pub height: u32,
    /// Frame rate of the video stream.
    pub frame_rate: FrameRate,
    /// Frames in the video stream, when the container says (MP4 does, Matroska not), else
    /// estimated from the duration.
    pub frames: Option<u64>,
    /// Duration in seconds, when known.
    pub duration: Option<f64>,
    /// The video codec (`h264`, `vp9`…).
    pub video_codec: String,
    /// The first audio stream's codec, if there is one.
    pub audio_codec: Option<String>,
    /// FFmpeg's container names (`mov,mp4,m4a,3gp,3g2,mj2`).
    pub container: String,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    streams: Vec<Stream>,
    format: Option<Format>,
}

#[derive(Deserialize)]
struct Stream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    r_frame_rate: Option<String>,
    avg_frame_rate: Option<String>,
    nb_frames: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    side_data_list: Vec<SideData>,
}

#[derive(Deserialize)]
struct SideData {
    rotation: Option<f64>,
}

#[derive(Deserialize)]
struct Format {
    format_name: Option<String>,
    duration: Option<String>,
}

/// Reads `path`'s facts with `ffprobe`.
pub fn probe(path: &Path) -> Result<VideoInfo> {
    let output = Command::new(program("ffprobe")?)
        .args(["-v", "error", "-print_format", "json"])
        .args(["-show_entries", "format=format_name,duration"])
        .args([
            "-show_entries",
            "stream=codec_type,codec_name,width,height,r_frame_rate,avg_frame_rate,nb_frames,duration",
        ])
        .args(["-show_entries", "stream_side_data=rotation"])
        .arg(path)
        .output()
        .map_err(|e| VideoError::io("cannot run ffprobe", e))?;
    let not_video = |why: &str| {
        VideoError::Invalid(format!(
            "{} is not a video percept can read: {why}",
            path.display()
        ))
    };
    if !output.status.success() {
        return Err(not_video(&stderr_tail(&output.stderr)));
    }
    let parsed: Probe =
        serde_json::from_slice(&output.stdout).map_err(|e| not_video(&e.to_string()))?;
    info_from(parsed).map_err(|why| not_video(&why))
}

fn info_from(probe: Probe) -> std::result::Result<VideoInfo, String> {
    let video = probe
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video"))
        .ok_or("it has no video stream")?;
    let (width, height) = match (video.width, video.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
        _ => return Err("its video stream has no frame size".into()),
    };
    // FFmpeg turns frames upright by the display matrix; a quarter turn swaps the sides.
    let rotation = video
        .side_data_list
        .iter()
        .find_map(|s| s.rotation)
        .unwrap_or(0.0);
    let quarter = (rotation.abs().round() as i64 / 90) % 2 == 1;
    let (width, height) = if quarter {
        (height, width)
    } else {
        (width, height)
    };
    // A still image (one JPEG in an MP4, say) has no usable rate; r_frame_rate is the
    // stream's base rate, avg_frame_rate its mean: prefer the mean where the two differ
    // (variable-rate phone videos), so the output lasts as long as the input.
    let rate = [&video.avg_frame_rate, &video.r_frame_rate]
        .into_iter()
        .flatten()
        .find_map(|r| FrameRate::parse(r))
        .ok_or("its video stream has no frame rate")?;
    let parse_f64 = |s: &Option<String>| s.as_deref().and_then(|d| d.parse::<f64>().ok());
    let duration = parse_f64(&video.duration)
        .or_else(|| probe.format.as_ref().and_then(|f| parse_f64(&f.duration)))
        .filter(|d| d.is_finite() && *d > 0.0);
    let frames = video
        .nb_frames
        .as_deref()
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .or_else(|| duration.map(|d| (d * rate.fps()).round() as u64));
    let audio_codec = probe
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("audio"))
        .and_then(|s| s.codec_name.clone());
    Ok(VideoInfo {
        width,
        height,
        frame_rate: rate,
        frames,
        duration,
        video_codec: video.codec_name.clone().unwrap_or_default(),
        audio_codec,
        container: probe.format.and_then(|f| f.format_name).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failure should stop with the value that caused it

    use super::*;

    fn parsed(json: &str) -> std::result::Result<VideoInfo, String> {
        info_from(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn reads_the_mp4_facts() {
        let info = parsed(
            r#"{"streams":[{"codec_type":"video","codec_name":"h264","width":320,"height":240,
            "r_frame_rate":"25/1","avg_frame_rate":"25/1","duration":"2.000000","nb_frames":"50"},
            {"codec_type":"audio","codec_name":"aac","r_frame_rate":"0/0"}],
            "format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"2.0"}}"#,
        )
        .unwrap();
        assert_eq!((info.width, info.height), (320, 240));
        assert_eq!(info.frame_rate, FrameRate { num: 25, den: 1 });
        assert_eq!(info.frames, Some(50));
        assert_eq!(info.audio_codec.as_deref(), Some("aac"));
    }

    #[test]
    fn a_quarter_turn_swaps_the_sides_and_a_missing_count_comes_from_the_duration() {
        let info = parsed(
            r#"{"streams":[{"codec_type":"video","codec_name":"vp9","width":1920,"height":1080,
            "r_frame_rate":"30000/1001","avg_frame_rate":"0/0",
            "side_data_list":[{"rotation":-90}]}],
            "format":{"format_name":"matroska,webm","duration":"10.01"}}"#,
        )
        .unwrap();
        assert_eq!((info.width, info.height), (1080, 1920));
        assert_eq!(info.frames, Some(300));
        assert_eq!(info.audio_codec, None);
    }

    #[test]
    fn audio_only_and_sizeless_streams_are_not_videos() {
        assert!(parsed(r#"{"streams":[{"codec_type":"audio","codec_name":"mp3"}]}"#).is_err());
        assert!(parsed(r#"{"streams":[{"codec_type":"video","r_frame_rate":"25/1"}]}"#).is_err());
        assert!(FrameRate::parse("0/0").is_none());
        assert!(FrameRate::parse("x").is_none());
    }
}
