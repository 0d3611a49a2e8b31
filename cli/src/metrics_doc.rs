//! `docs/observability.md` lists every metric the code defines, with the same type and labels,
//! and no metric the code does not define. The binary is where every service's metrics meet
//! (`leadstream dev` serves them from one registry), so the check lives here.

use leadstream_gateway::metrics::{GatewayCounter, GatewayHistogram};
use leadstream_notifier::metrics::{NotifierCounter, NotifierGauge, NotifierHistogram};
use leadstream_processor::metrics::{ProcessorCounter, ProcessorHistogram};
use leadstream_shared::avro::AvroCounter;
use leadstream_shared::kafka::stats::{KafkaCounter, KafkaGauge};
use leadstream_shared::metric::Metric;

const DOC: &str = include_str!("../../docs/observability.md");

/// A metric as the code or the document describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    name: String,
    kind: String,
    labels: Vec<String>,
}

fn rows_of<M: Metric>(out: &mut Vec<Row>) {
    for &m in M::ALL {
        assert!(!m.help().is_empty(), "{} has no doc comment", m.name());
        out.push(Row {
            name: m.name().to_string(),
            kind: M::KIND.as_str().to_string(),
            labels: m.labels().iter().map(|l| l.to_string()).collect(),
        });
    }
}

/// Every metric enum of every crate.
fn code() -> Vec<Row> {
    let mut out = Vec::new();
    rows_of::<GatewayCounter>(&mut out);
    rows_of::<GatewayHistogram>(&mut out);
    rows_of::<ProcessorCounter>(&mut out);
    rows_of::<ProcessorHistogram>(&mut out);
    rows_of::<NotifierCounter>(&mut out);
    rows_of::<NotifierHistogram>(&mut out);
    rows_of::<NotifierGauge>(&mut out);
    rows_of::<KafkaCounter>(&mut out);
    rows_of::<KafkaGauge>(&mut out);
    rows_of::<AvroCounter>(&mut out);
    out
}

/// The backticked words of a cell outside parentheses: "`kind` (`milestone`, `sequence`)" is
/// the one label `kind`; "—" is none.
fn backticked(cell: &str) -> Vec<String> {
    let mut depth = 0u32;
    let outside: String = cell
        .chars()
        .filter(|&c| {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                _ => return depth == 0,
            }
            false
        })
        .collect();
    outside
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The metric rows of the document's tables (`| name | type | labels | meaning |`).
fn doc(markdown: &str) -> Vec<Row> {
    markdown
        .lines()
        .filter(|l| l.starts_with("| `leadstream_"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = backticked(cells[1]);
            assert_eq!(name.len(), 1, "one name per row: {l}");
            Row {
                name: name[0].clone(),
                kind: cells[2].to_string(),
                labels: backticked(cells[3]),
            }
        })
        .collect()
}

fn unique(rows: &[Row], what: &str) {
    let mut names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    let dupes: Vec<&&str> = names
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| &w[0])
        .collect();
    assert!(dupes.is_empty(), "{what} names a metric twice: {dupes:?}");
}

#[test]
fn the_document_lists_every_metric_with_its_type_and_labels() {
    let code = code();
    let doc = doc(DOC);
    unique(&code, "the code");
    unique(&doc, "docs/observability.md");
    let mut problems = Vec::new();
    for c in &code {
        match doc.iter().find(|d| d.name == c.name) {
            None => problems.push(format!("{} is not in docs/observability.md", c.name)),
            Some(d) if d != c => problems.push(format!("code {c:?}, document {d:?}")),
            Some(_) => {}
        }
    }
    for d in &doc {
        if !code.iter().any(|c| c.name == d.name) {
            problems.push(format!("{} is documented but not defined", d.name));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_parser_reads_labels_outside_parentheses() {
    assert_eq!(backticked("`kind` (`milestone`, `sequence`)"), ["kind"]);
    assert_eq!(backticked("`client`, `broker`"), ["client", "broker"]);
    assert!(backticked("—").is_empty());
    let rows = doc("| `leadstream_x_total` | counter | `a`, `b` | c |\n| name | type |");
    assert_eq!(
        rows,
        [Row {
            name: "leadstream_x_total".into(),
            kind: "counter".into(),
            labels: vec!["a".into(), "b".into()],
        }]
    );
}
