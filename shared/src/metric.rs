//! Metrics as typed definitions: each metric is an enum variant that knows its name, its kind
//! and its label keys, so a call site cannot name a metric that does not exist, record a count
//! into a gauge, or use a wrong or missing label key.
//!
//! Each crate declares its metrics with [`define!`](crate::metric::define), one enum per kind
//! (`GatewayCounter`, `GatewayHistogram`, …); the doc line of a variant is its help text.
//! Values are recorded through the `metrics` facade with [`counter!`](crate::metric::counter),
//! [`gauge!`](crate::metric::gauge) and [`histogram!`](crate::metric::histogram), which take the
//! variant and the label *values* in the declared order:
//!
//! ```
//! use leadstream_shared::metric;
//!
//! metric::define! {
//!     /// Example counters.
//!     pub enum ExampleCounter: Counter {
//!         /// Requests answered, by route and HTTP status.
//!         Requests = "example_requests_total" ["route", "status"],
//!         /// Requests shed.
//!         Shed = "example_shed_total" [],
//!     }
//! }
//!
//! let route = String::from("/v1/events");
//! metric::counter!(ExampleCounter::Requests, route, "202").increment(1);
//! metric::counter!(ExampleCounter::Shed).increment(1);
//! assert_eq!(ExampleCounter::Requests.labels(), &["route", "status"]);
//! ```
//!
//! The number of label values is checked when the call site compiles:
//!
//! ```compile_fail
//! # use leadstream_shared::metric;
//! # metric::define! {
//! #     pub enum ExampleCounter: Counter {
//! #         /// Requests answered, by route and HTTP status.
//! #         Requests = "example_requests_total" ["route", "status"],
//! #     }
//! # }
//! metric::counter!(ExampleCounter::Requests, "/v1/events").increment(1); // no status
//! ```
//!
//! The macros return the
//! `metrics` handle (`Counter`, `Gauge`, `Histogram`), so hot paths resolve a handle once and
//! keep it. When every label value is a string literal the key is a `static`, as with the
//! `metrics` macros: no allocation per call. Every enum lists its variants in `ALL`; a test of
//! the `leadstream` binary compares all of them with `docs/observability.md`.

use std::fmt::Debug;

/// What a metric is: the Prometheus type it is exported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Counter,
    Gauge,
    /// Rendered as a Prometheus summary by the exporter.
    Histogram,
}

impl Kind {
    /// The word `docs/observability.md` uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A metric enum made by [`define!`](crate::metric::define).
pub trait Metric: Debug + Copy + 'static {
    const KIND: Kind;
    /// Every variant, in declaration order.
    const ALL: &'static [Self];
    /// The exported name (`leadstream_…`).
    fn name(self) -> &'static str;
    /// The label keys, in the order call sites pass their values.
    fn labels(self) -> &'static [&'static str];
    /// What it measures (the variant's doc comment).
    fn help(self) -> &'static str;
}

/// A metric recorded with [`counter!`](crate::metric::counter).
pub trait CounterMetric: Metric {}
/// A metric recorded with [`gauge!`](crate::metric::gauge).
pub trait GaugeMetric: Metric {}
/// A metric recorded with [`histogram!`](crate::metric::histogram).
pub trait HistogramMetric: Metric {}

pub use crate::{
    __metric_counter as counter, __metric_define as define, __metric_gauge as gauge,
    __metric_histogram as histogram,
};

/// What the macros expand to; not for direct use.
#[doc(hidden)]
pub mod __private {
    pub use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, SharedString};

    use super::{CounterMetric, GaugeMetric, HistogramMetric, Metric};

    /// The `i`th label key, at compile time.
    pub const fn label_key(keys: &'static [&'static str], i: usize) -> &'static str {
        assert!(
            i < keys.len(),
            "more label values than the metric declares labels"
        );
        keys[i]
    }

    /// The key of a metric whose label values are known only at run time.
    pub fn key<M: Metric, const N: usize>(metric: M, values: [SharedString; N]) -> Key {
        let keys = metric.labels();
        debug_assert_eq!(keys.len(), N, "label values of {}", metric.name());
        let labels: Vec<Label> = keys
            .iter()
            .zip(values)
            .map(|(k, v)| Label::new(*k, v))
            .collect();
        Key::from_parts(metric.name(), labels)
    }

    pub fn counter<M: CounterMetric>(_: M, key: &Key, metadata: &Metadata<'static>) -> Counter {
        metrics::with_recorder(|r| r.register_counter(key, metadata))
    }

    pub fn gauge<M: GaugeMetric>(_: M, key: &Key, metadata: &Metadata<'static>) -> Gauge {
        metrics::with_recorder(|r| r.register_gauge(key, metadata))
    }

    pub fn histogram<M: HistogramMetric>(
        _: M,
        key: &Key,
        metadata: &Metadata<'static>,
    ) -> Histogram {
        metrics::with_recorder(|r| r.register_histogram(key, metadata))
    }
}

/// Declare one enum of metrics of one kind (`Counter`, `Gauge` or `Histogram`): each variant is
/// `Variant = "exported_name" ["label", …]`, its doc comment the help text. See the
/// [module](crate::metric) for an example.
#[doc(hidden)]
#[macro_export]
macro_rules! __metric_define {
    (
        $(#[$meta:meta])*
        $vis:vis enum $enum:ident: $kind:ident {
            $(
                $(#[doc = $doc:literal])*
                $variant:ident = $name:literal [$($label:literal),* $(,)?]
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $enum {
            $($(#[doc = $doc])* $variant,)*
        }

        impl $enum {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The exported name.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }

            /// The label keys, in the order call sites pass their values.
            pub const fn labels(self) -> &'static [&'static str] {
                match self {
                    $(Self::$variant => &[$($label),*],)*
                }
            }

            /// What it measures (the variant's doc comment).
            pub const fn help(self) -> &'static str {
                match self {
                    $(Self::$variant => concat!($($doc),*).trim_ascii(),)*
                }
            }
        }

        impl $crate::metric::Metric for $enum {
            const KIND: $crate::metric::Kind = $crate::metric::Kind::$kind;
            const ALL: &'static [Self] = $enum::ALL;
            fn name(self) -> &'static str {
                $enum::name(self)
            }
            fn labels(self) -> &'static [&'static str] {
                $enum::labels(self)
            }
            fn help(self) -> &'static str {
                $enum::help(self)
            }
        }

        $crate::__metric_kind!($kind, $enum);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __metric_kind {
    (Counter, $enum:ident) => {
        impl $crate::metric::CounterMetric for $enum {}
    };
    (Gauge, $enum:ident) => {
        impl $crate::metric::GaugeMetric for $enum {}
    };
    (Histogram, $enum:ident) => {
        impl $crate::metric::HistogramMetric for $enum {}
    };
}

/// The counter of a [`CounterMetric`] with its label values in the declared order:
/// `metric::counter!(GatewayCounter::HttpRequests, route, status)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __metric_counter {
    ($($args:tt)+) => {
        $crate::__metric_register!(counter, $($args)+)
    };
}

/// The gauge of a [`GaugeMetric`] with its label values in the declared order.
#[doc(hidden)]
#[macro_export]
macro_rules! __metric_gauge {
    ($($args:tt)+) => {
        $crate::__metric_register!(gauge, $($args)+)
    };
}

/// The histogram of a [`HistogramMetric`] with its label values in the declared order.
#[doc(hidden)]
#[macro_export]
macro_rules! __metric_histogram {
    ($($args:tt)+) => {
        $crate::__metric_register!(histogram, $($args)+)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __metric_register {
    // Only string literals: the whole key is a static, built at compile time.
    ($register:ident, $metric:expr $(, $value:literal)* $(,)?) => {{
        $crate::__metric_arity!($metric $(, $value)*);
        static LABELS: [$crate::metric::__private::Label; 0 $(+ $crate::__metric_one!($value))*] =
            $crate::__metric_static_labels!($metric; 0; []; $($value),*);
        static KEY: $crate::metric::__private::Key =
            $crate::metric::__private::Key::from_static_parts($metric.name(), &LABELS);
        $crate::metric::__private::$register($metric, &KEY, $crate::__metric_metadata!())
    }};
    ($register:ident, $metric:expr $(, $value:expr)* $(,)?) => {{
        $crate::__metric_arity!($metric $(, $value)*);
        let key = $crate::metric::__private::key(
            $metric,
            [$($crate::metric::__private::SharedString::from($value)),*],
        );
        $crate::metric::__private::$register($metric, &key, $crate::__metric_metadata!())
    }};
}

/// Fails to compile unless the call passes as many label values as the metric declares.
#[doc(hidden)]
#[macro_export]
macro_rules! __metric_arity {
    ($metric:expr $(, $value:expr)*) => {
        const _: () = assert!(
            $metric.labels().len() == 0 $(+ $crate::__metric_one!($value))*,
            "pass one value for each label the metric declares, in the declared order"
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __metric_one {
    ($value:expr) => {
        1usize
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __metric_static_labels {
    ($metric:expr; $i:expr; [$($done:expr),*];) => {
        [$($done),*]
    };
    ($metric:expr; $i:expr; [$($done:expr),*]; $value:literal $(, $rest:literal)*) => {
        $crate::__metric_static_labels!(
            $metric;
            $i + 1;
            [$($done,)* $crate::metric::__private::Label::from_static_parts(
                $crate::metric::__private::label_key($metric.labels(), $i),
                $value,
            )];
            $($rest),*
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __metric_metadata {
    () => {{
        static METADATA: $crate::metric::__private::Metadata<'static> =
            $crate::metric::__private::Metadata::new(
                ::core::module_path!(),
                $crate::metric::__private::Level::INFO,
                ::core::option::Option::Some(::core::module_path!()),
            );
        &METADATA
    }};
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::{Kind, Metric};
    use crate::metric;

    metric::define! {
        /// Counters of the tests.
        enum TestCounter: Counter {
            /// Things, by colour
            /// and size.
            Things = "test_things_total" ["colour", "size"],
            /// Nothing labelled.
            Plain = "test_plain_total" [],
        }
    }

    metric::define! {
        enum TestGauge: Gauge {
            /// Depth.
            Depth = "test_depth" ["queue"],
        }
    }

    metric::define! {
        enum TestHistogram: Histogram {
            /// Seconds.
            Seconds = "test_seconds" [],
        }
    }

    #[test]
    fn a_variant_knows_its_name_kind_labels_and_help() {
        assert_eq!(TestCounter::ALL, &[TestCounter::Things, TestCounter::Plain]);
        assert_eq!(TestCounter::Things.name(), "test_things_total");
        assert_eq!(TestCounter::Things.labels(), &["colour", "size"]);
        assert_eq!(TestCounter::Things.help(), "Things, by colour and size.");
        assert!(TestCounter::Plain.labels().is_empty());
        assert_eq!(<TestCounter as Metric>::KIND, Kind::Counter);
        assert_eq!(<TestGauge as Metric>::KIND, Kind::Gauge);
        assert_eq!(<TestHistogram as Metric>::KIND, Kind::Histogram);
    }

    #[test]
    fn keys_carry_the_declared_label_keys_in_order() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let size = String::from("large");
            metric::counter!(TestCounter::Things, "red", size).increment(2);
            metric::counter!(TestCounter::Things, "blue", "small").increment(1);
            metric::counter!(TestCounter::Plain).increment(3);
            metric::gauge!(TestGauge::Depth, "q".to_string()).set(4.0);
            metric::histogram!(TestHistogram::Seconds).record(0.5);
        });
        let text = handle.render();
        for line in [
            "# TYPE test_things_total counter",
            "test_things_total{colour=\"red\",size=\"large\"} 2",
            "test_things_total{colour=\"blue\",size=\"small\"} 1",
            "# TYPE test_plain_total counter",
            "test_plain_total 3",
            "# TYPE test_depth gauge",
            "test_depth{queue=\"q\"} 4",
            "# TYPE test_seconds summary",
            "test_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        }
    }
}
