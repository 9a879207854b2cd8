//! The latency chart: p50 and p99 of each scenario, ours beside the baseline.

use plotters::prelude::*;

/// One scenario's latencies, in microseconds.
pub(crate) struct Bars {
    /// The group's name; `|` breaks lines.
    pub(crate) label: String,
    pub(crate) ours: (f64, f64),
    pub(crate) baseline: Option<(f64, f64)>,
}

const OURS_P50: RGBColor = RGBColor(31, 119, 180);
const OURS_P99: RGBColor = RGBColor(158, 202, 225);
const BASE_P50: RGBColor = RGBColor(230, 85, 13);
const BASE_P99: RGBColor = RGBColor(253, 174, 107);

/// Writes a grouped bar chart (log scale) to `path` as SVG.
pub(crate) fn write(path: &str, title: &str, groups: &[Bars]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let highest = groups
        .iter()
        .flat_map(|bars| [Some(bars.ours.1), bars.baseline.map(|b| b.1)])
        .flatten()
        .fold(1.0f64, f64::max);
    let lowest = groups
        .iter()
        .flat_map(|bars| [Some(bars.ours.0), bars.baseline.map(|b| b.0)])
        .flatten()
        .fold(f64::MAX, f64::min)
        .max(0.1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..groups.len() as f64, (lowest / 2.0..highest * 2.0).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("latency, µs (log scale)")
        .draw()?;
    let floor = lowest / 2.0;
    let series = [
        ("ours p50", OURS_P50, 0.10),
        ("baseline p50", BASE_P50, 0.30),
        ("ours p99", OURS_P99, 0.50),
        ("baseline p99", BASE_P99, 0.70),
    ];
    for (name, color, offset) in series {
        let bars: Vec<_> = groups
            .iter()
            .enumerate()
            .filter_map(|(index, bars)| {
                let value = match name {
                    "ours p50" => Some(bars.ours.0),
                    "ours p99" => Some(bars.ours.1),
                    "baseline p50" => bars.baseline.map(|b| b.0),
                    _ => bars.baseline.map(|b| b.1),
                }?;
                let x = index as f64 + offset;
                Some(Rectangle::new([(x, floor), (x + 0.18, value)], color.filled()))
            })
            .collect();
        chart
            .draw_series(bars)?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    // Each group's name, under its bars (an axis on floats would place
    // labels at round numbers, not at the groups).
    let area = chart.plotting_area();
    let (left, right) = (area.get_pixel_range().0.start, area.get_pixel_range().0.end);
    let bottom = area.get_pixel_range().1.end;
    let width = f64::from(right - left) / groups.len() as f64;
    for (index, bars) in groups.iter().enumerate() {
        let x = left + (width * (index as f64 + 0.05)) as i32;
        for (line, text) in bars.label.split('|').enumerate() {
            root.draw(&Text::new(
                text.to_owned(),
                (x, bottom + 8 + 14 * line as i32),
                ("sans-serif", 12).into_font(),
            ))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}
