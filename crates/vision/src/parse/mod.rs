//! Multi-person human parsing with LIP's labels. People are found by the pose detector (and
//! around faces it misses); then, per person, either
//! - `learned` (the default): the trained parsing network on the pose stage's rotated crop
//!   (`network`), its label probabilities sampled back into the photo, or
//! - `pose-guided`: BlazePose's person mask, the face mesh and a skin model from the face, each
//!   mask pixel labelled from the skeleton part it belongs to and whether it looks like skin.
//!
//! A pixel two people claim goes to the one whose skeleton is nearer.

mod body;
mod colour;
mod detached_hair;
mod garments;
mod geometry;
mod guided;
mod labels;
mod learned;
mod network;
mod one_piece;
mod paint;
mod render;
mod result;
mod softmax;
mod summary;

use image::{RgbImage, imageops};
use percept_infer::Models;
use rayon::prelude::*;

pub use crate::people::PixelBox;
use crate::{Holistic, HolisticOptions, PersonLandmarks, PoseModel, Result, VisionError};
use detached_hair::{Head, relabel_detached_hair};
pub use labels::{LABELS, PaletteEntry, colour as label_colour, palette};
use learned::LearnedParser;
pub use learned::TASK as LEARNED_TASK;
pub use network::TASK as NETWORK_TASK;
use network::{CropParse, PersonParser, Skeleton};
use one_piece::lower_half_of_a_dress;
use paint::{label_people, paint_people};
pub use render::{colour_mask, overlay};
pub use result::{ParseResult, Parsed, ParsedPerson, Segment};
use summary::summarise;

/// Which labeller runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParserChoice {
    /// A trained network: the manifest's whole-photo parsing network when one is declared
    /// (the learned-model slot), else the shipped per-person network; the pose-guided rules
    /// when neither is loaded (the result's `parser` says which ran).
    #[default]
    Learned,
    /// The pose-guided rules (skeleton geometry and skin colour).
    PoseGuided,
}

impl ParserChoice {
    /// The option's values, default first.
    pub const NAMES: [&'static str; 2] = ["learned", "pose-guided"];

    /// From the option's value.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "learned" => Some(Self::Learned),
            "pose-guided" => Some(Self::PoseGuided),
            _ => None,
        }
    }
}

/// How the parser runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseOptions {
    /// At most this many people are parsed, the most confident first (1..=20).
    pub max_persons: usize,
    /// Minimum confidence of a person or face detection that seeds a person, [0.05, 1].
    pub min_score: f32,
    /// Photos are parsed at most this long side (the label map is scaled back), 256..=2048.
    pub work_side: u32,
    /// Which labeller runs.
    pub parser: ParserChoice,
    /// The per-person network also runs on each crop mirrored left–right and the two label
    /// maps are averaged (twice the network's cost; ignored by the other labellers).
    pub mirror: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            max_persons: 10,
            min_score: 0.5,
            work_side: 1024,
            parser: ParserChoice::Learned,
            mirror: true,
        }
    }
}

impl ParseOptions {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(VisionError::BadOption(m));
        if !(1..=20).contains(&self.max_persons) {
            return bad(format!(
                "max_persons must be in 1..=20, got {}",
                self.max_persons
            ));
        }
        if !(0.05..=1.0).contains(&self.min_score) {
            return bad(format!(
                "min_score must be in [0.05, 1], got {}",
                self.min_score
            ));
        }
        if !(256..=2048).contains(&self.work_side) {
            return bad(format!(
                "work_side must be in 256..=2048, got {}",
                self.work_side
            ));
        }
        Ok(())
    }
}

/// The parser on loaded models. Cheap to clone; share it in an `Arc`.
#[derive(Debug, Clone)]
pub struct Parser {
    /// The people stage and the per-person landmark models.
    holistic: Holistic,
    /// The learned-model slot, when the manifest declares a whole-photo parsing network.
    learned: Option<LearnedParser>,
    /// The per-person parsing network, when loaded.
    network: Option<PersonParser>,
}

/// Who labels the pixels of a parse.
enum Labeller<'a> {
    /// The whole-photo network the manifest declares.
    Slot(&'a LearnedParser),
    /// The per-person network.
    Network(&'a PersonParser),
    /// The pose-guided rules.
    Rules,
}

impl Parser {
    /// The shipped per-person parsing network.
    pub const NETWORK_MODEL: &'static str = "lip_parser";

    /// Every model it needs loaded for both parsers.
    pub const MODELS: [&'static str; 9] = [
        Holistic::MODELS[0],
        // The landmark model without its mask head: the learned parser's poses.
        Holistic::MODELS[1],
        // The landmark model with the person mask: the pose-guided parser's masks.
        crate::PoseEstimator::MASK_MODEL,
        // The people stage's face detector.
        Holistic::MODELS[2],
        Holistic::MODELS[3],
        Holistic::MODELS[4],
        Holistic::MODELS[5],
        Holistic::MODELS[6],
        Self::NETWORK_MODEL,
    ];

    /// Builds it on loaded models. Without [`Parser::NETWORK_MODEL`] (or a declared
    /// whole-photo network) only the pose-guided rules can run.
    pub fn new(models: &Models) -> Result<Self> {
        let network = PersonParser::find(models)?;
        if let Some(net) = &network {
            // People are parsed two at a time (rayon); the second session is built now, not
            // on the first group photo.
            net.reserve(2)?;
        }
        Ok(Self {
            holistic: Holistic::new(models)?,
            learned: LearnedParser::find(models)?,
            network,
        })
    }

    /// The labeller `choice` resolves to with the models loaded: a declared whole-photo
    /// network, else the per-person network, else the rules.
    fn labeller(&self, choice: ParserChoice) -> Labeller<'_> {
        match (choice, &self.learned, &self.network) {
            (ParserChoice::Learned, Some(slot), _) => Labeller::Slot(slot),
            (ParserChoice::Learned, None, Some(net)) => Labeller::Network(net),
            _ => Labeller::Rules,
        }
    }

    /// The result's `parser` value for `choice` with the models loaded.
    pub fn resolve(&self, choice: ParserChoice) -> String {
        match self.labeller(choice) {
            Labeller::Slot(slot) => format!("learned:{}", slot.name()),
            Labeller::Network(net) => format!("learned:{}", net.name()),
            Labeller::Rules => "pose-guided".to_string(),
        }
    }

    /// Parses every person in `image`.
    pub fn parse(&self, image: &RgbImage, options: &ParseOptions) -> Result<Parsed> {
        options.validate()?;
        let (w, h) = image.dimensions();
        let long = w.max(h);
        let work_owned;
        let work = if long > options.work_side {
            let s = options.work_side as f32 / long as f32;
            let (ww, wh) = (
                ((w as f32 * s).round() as u32).max(1),
                ((h as f32 * s).round() as u32).max(1),
            );
            work_owned = percept_infer::resize_rgb(image, ww, wh);
            &work_owned
        } else {
            image
        };
        let t0 = std::time::Instant::now();
        let labeller = self.labeller(options.parser);
        let network = match labeller {
            Labeller::Network(net) => Some(net),
            _ => None,
        };
        // The network draws each person itself: the pose model's mask head is not needed.
        let candidates = self.holistic.people().find(
            work,
            options.min_score,
            options.max_persons,
            if network.is_none() {
                PoseModel::FullWithMask
            } else {
                PoseModel::Full
            },
        )?;
        let t1 = t0.elapsed();
        let scores: Vec<f32> = candidates.iter().map(|c| c.pose.score).collect();
        let seeds: Vec<&'static str> = candidates.iter().map(|c| c.seed.name()).collect();
        let (labels, evidence, owner) = match network {
            Some(net) => {
                // Several runs go side by side (both views, or several people) only on a pool
                // of two or more threads; on one (`percept batch --jobs 1`) they go in turn,
                // and each may then take the cores an idle engine lends a lone run.
                let beside =
                    rayon::current_num_threads() > 1 && (options.mirror || candidates.len() > 1);
                let crops: Vec<CropParse> = candidates
                    .par_iter()
                    .map(|c| net.run(work, &c.pose.roi, options.mirror, beside))
                    .collect::<Result<_>>()?;
                let skeletons: Vec<Skeleton> = candidates
                    .iter()
                    .map(|c| Skeleton::new(&c.pose.landmarks))
                    .collect();
                let t2 = t0.elapsed();
                let (mut labels, mut evidence, mut owner) =
                    paint_people(work, net.to_lip(), &crops, &skeletons);
                // Each stage's own time (the stamps are from the start).
                tracing::debug!(
                    find = ?t1,
                    networks = ?t2.saturating_sub(t1),
                    painting = ?t0.elapsed().saturating_sub(t2),
                    "parse stages"
                );
                let heads: Vec<Head> = candidates
                    .iter()
                    .enumerate()
                    .filter_map(|(k, c)| Head::of(k, &c.pose.landmarks))
                    .collect();
                relabel_detached_hair(
                    work.dimensions(),
                    &mut labels,
                    &mut evidence,
                    &mut owner,
                    &heads,
                );
                lower_half_of_a_dress(&mut labels, &owner);
                (labels, evidence, owner)
            }
            None => {
                let people: Vec<PersonLandmarks> = candidates
                    .into_par_iter()
                    .map(|c| {
                        self.holistic.complete(
                            work,
                            c.pose,
                            &HolisticOptions {
                                hands: false,
                                ..HolisticOptions::default()
                            },
                        )
                    })
                    .collect::<Result<_>>()?;
                let t2 = t0.elapsed();
                let learned = match labeller {
                    Labeller::Slot(slot) => Some(slot.label(work)?),
                    _ => None,
                };
                let out = label_people(work, &people, learned.as_ref());
                tracing::debug!(
                    find = ?t1,
                    complete = ?t2.saturating_sub(t1),
                    label = ?t0.elapsed().saturating_sub(t2),
                    "parse stages"
                );
                out
            }
        };
        let labels = if work.dimensions() == (w, h) {
            labels
        } else {
            imageops::resize(&labels, w, h, imageops::FilterType::Nearest)
        };
        let scale = (
            w as f32 / work.width() as f32,
            h as f32 / work.height() as f32,
        );
        let mut result = summarise(
            &labels,
            &evidence,
            &owner,
            work.dimensions(),
            scale,
            &scores,
            &seeds,
        );
        result.parser = self.resolve(options.parser);
        Ok(Parsed { result, labels })
    }
}
