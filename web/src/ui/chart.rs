//! A horizontal bar chart as inline SVG, drawn on the server from report rows.

use maud::{html, Markup};

const WIDTH: f64 = 720.0;
const LABEL_W: f64 = 170.0;
const VALUE_W: f64 = 70.0;
const ROW_H: f64 = 26.0;
const BAR_H: f64 = 18.0;

/// One bar per `(label, value)`; bars scale to `max` (the largest value when `None`).
/// `fmt` writes the value shown at the bar's end; `bad` bars are drawn in the alert colour.
pub fn bar_chart(
    title: &str,
    rows: &[(String, f64, bool)],
    max: Option<f64>,
    fmt: impl Fn(f64) -> String,
) -> Markup {
    let top = max
        .unwrap_or_else(|| rows.iter().map(|r| r.1).fold(0.0, f64::max))
        .max(f64::EPSILON);
    let plot_w = WIDTH - LABEL_W - VALUE_W;
    let height = ROW_H * rows.len() as f64 + 8.0;
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title)
            viewBox=(format!("0 0 {WIDTH} {height}")) width="100%" style=(format!("max-width:{WIDTH}px")) {
            title { (title) }
            line.axis x1=(LABEL_W) x2=(LABEL_W) y1="0" y2=(height) {}
            @for (i, (label, value, bad)) in rows.iter().enumerate() {
                @let y = i as f64 * ROW_H + 4.0;
                @let w = (value / top).clamp(0.0, 1.0) * plot_w;
                @let short: String = if label.chars().count() > 22 { format!("{}…", label.chars().take(21).collect::<String>()) } else { label.clone() };
                text x=(LABEL_W - 6.0) y=(y + BAR_H - 4.0) text-anchor="end" { (short) }
                rect class=(if *bad { "bar bad" } else { "bar" }) x=(LABEL_W) y=(y) width=(format!("{w:.1}")) height=(BAR_H) rx="2" {
                    title { (label) ": " (fmt(*value)) }
                }
                text x=(LABEL_W + w + 6.0) y=(y + BAR_H - 4.0) { (fmt(*value)) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_max() {
        let rows = vec![
            ("a".to_string(), 50.0, false),
            ("b".to_string(), 100.0, true),
        ];
        let svg = bar_chart("t", &rows, Some(100.0), |v| format!("{v:.0}")).into_string();
        let plot_w = WIDTH - LABEL_W - VALUE_W;
        assert!(
            svg.contains(&format!("width=\"{:.1}\"", plot_w / 2.0)),
            "{svg}"
        );
        assert!(svg.contains(&format!("width=\"{plot_w:.1}\"")));
        assert!(svg.contains("class=\"bar bad\""));
        assert_eq!(svg.matches("<rect").count(), 2);
    }

    #[test]
    fn labels_are_escaped() {
        let rows = vec![("<script>".to_string(), 1.0, false)];
        let svg = bar_chart("t", &rows, None, |v| v.to_string()).into_string();
        assert!(!svg.contains("<script>"));
    }
}
