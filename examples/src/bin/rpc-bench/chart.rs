//! The latency chart: p50 and p99 of each scenario, ours beside the raw
//! baseline, the floor and oslo.messaging where the run measured them.

use plotters::prelude::*;

/// One scenario's latencies, in microseconds, as (p50, p99).
pub(crate) struct Bars {
    /// The group's name; `|` breaks lines.
    pub(crate) label: String,
    pub(crate) ours: (f64, f64),
    /// The raw lapin baseline with our guarantees.
    pub(crate) baseline: Option<(f64, f64)>,
    /// The raw floor: no confirms, no acks.
    pub(crate) floor: Option<(f64, f64)>,
    /// oslo.messaging's client and server (`--peers`).
    pub(crate) peer: Option<(f64, f64)>,
}

impl Bars {
    fn series(&self, series: Series) -> Option<(f64, f64)> {
        match series {
            Series::Ours => Some(self.ours),
            Series::Baseline => self.baseline,
            Series::Floor => self.floor,
            Series::Peer => self.peer,
        }
    }
}

#[derive(Clone, Copy)]
enum Series {
    Ours,
    Baseline,
    Floor,
    Peer,
}

/// Each series: its legend, its p50 and p99 colours.
const SERIES: [(Series, &str, RGBColor, RGBColor); 4] = [
    (
        Series::Floor,
        "raw floor",
        RGBColor(49, 163, 84),
        RGBColor(161, 217, 155),
    ),
    (Series::Ours, "ours", RGBColor(31, 119, 180), RGBColor(158, 202, 225)),
    (
        Series::Baseline,
        "raw, our guarantees",
        RGBColor(230, 85, 13),
        RGBColor(253, 174, 107),
    ),
    (
        Series::Peer,
        "oslo.messaging",
        RGBColor(117, 107, 177),
        RGBColor(188, 189, 220),
    ),
];

/// Writes a grouped bar chart (log scale) to `path` as SVG: per scenario,
/// each measured series' p50 (dark) and p99 (light) side by side.
pub(crate) fn write(path: &str, title: &str, groups: &[Bars]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1200, 580)).into_drawing_area();
    root.fill(&WHITE)?;
    let values = || {
        groups
            .iter()
            .flat_map(|bars| SERIES.iter().filter_map(|(series, ..)| bars.series(*series)))
    };
    let highest = values().map(|(_, p99)| p99).fold(1.0f64, f64::max);
    let lowest = values().map(|(p50, _)| p50).fold(f64::MAX, f64::min).max(0.1);
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
    let bottom = lowest / 2.0;
    let width = 0.9 / (SERIES.len() * 2) as f64;
    for (position, (series, name, p50_color, p99_color)) in SERIES.iter().enumerate() {
        for (quantile, color) in [(0, *p50_color), (1, *p99_color)] {
            let bars: Vec<_> = groups
                .iter()
                .enumerate()
                .filter_map(|(index, bars)| {
                    let (p50, p99) = bars.series(*series)?;
                    let value = if quantile == 0 { p50 } else { p99 };
                    let x = index as f64 + 0.05 + width * (position * 2 + quantile) as f64;
                    Some(Rectangle::new([(x, bottom), (x + width * 0.9, value)], color.filled()))
                })
                .collect();
            let label = format!("{name} {}", if quantile == 0 { "p50" } else { "p99" });
            chart
                .draw_series(bars)?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        }
    }
    // Each group's name, under its bars (an axis on floats would place
    // labels at round numbers, not at the groups).
    let area = chart.plotting_area();
    let (left, right) = (area.get_pixel_range().0.start, area.get_pixel_range().0.end);
    let pixel_bottom = area.get_pixel_range().1.end;
    let group_width = f64::from(right - left) / groups.len() as f64;
    for (index, bars) in groups.iter().enumerate() {
        let x = left + (group_width * (index as f64 + 0.05)) as i32;
        for (line, text) in bars.label.split('|').enumerate() {
            root.draw(&Text::new(
                text.to_owned(),
                (x, pixel_bottom + 8 + 14 * line as i32),
                ("sans-serif", 12).into_font(),
            ))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}
