//! Renders one image in one style: `art_render STYLE IN OUT [key=value ...]`.
//!
//! A development aid (the `percept run art` command is the user-facing way); options are the
//! style's parameters, e.g. `sigma_s=40 sigma_r=0.2`.

use percept_art::{Style, StyleParams, render};
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [style, input, output, opts @ ..] = args.as_slice() else {
        return Err("usage: art_render STYLE IN OUT [key=value ...]".into());
    };
    let style: Style = style.parse()?;
    let pairs = opts
        .iter()
        .map(|o| o.split_once('=').ok_or("options are key=value"))
        .collect::<Result<Vec<_>, _>>()?;
    let params = StyleParams::from_pairs(style, pairs)?;
    let img = image::open(input)?.to_rgb8();
    let t = std::time::Instant::now();
    let out = render(&img, &params)?;
    eprintln!(
        "{style} {}x{}: {:.1} ms",
        img.width(),
        img.height(),
        t.elapsed().as_secs_f64() * 1e3
    );
    out.save(output)?;
    Ok(())
}
