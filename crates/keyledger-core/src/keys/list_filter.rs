//! The `filter` query parameter of `GET` and `HEAD /api/v2/keys`, parsed.
//!
//! Pure: this module only turns the text into a [`KeyFilter`];
//! [`crate::keys::projection::KeyQuery`] applies it to keys.
//!
//! Key Protect's syntax: terms separated by spaces, each
//! `<property>=<value>` or `<property>=<operator>:<value>`.
//!
//! - `creationDate`, `deletionDate`, `expirationDate`, `lastRotateDate`,
//!   `lastUpdateDate`: an RFC 3339 date in double quotes
//!   (`"2022-02-15T00:00:00Z"`), optionally after one operator `lt:`,
//!   `lte:`, `gt:`, `gte:` (no operator: equal); or the keyword `none`
//!   (unquoted, any case, no operator): keys without that date.
//! - `extractable`: `true` or `false`, unquoted, any case, no operator.
//! - `state`: comma-separated states from 0, 1, 2, 3, 5, no spaces, no
//!   operator; the key's state must be one of them.
//!
//! At most [`MAX_TERMS_PER_PROPERTY`] terms of one property; all terms must
//! hold (AND), whatever their property. Anything else is an error naming
//! what is wrong, never a partial filter: an ignored term would return keys
//! the client asked to exclude.

use chrono::{DateTime, Utc};

use crate::keys::state::KeyState;

/// Most terms of one property a filter may hold (Key Protect's limit).
pub const MAX_TERMS_PER_PROPERTY: usize = 3;

/// Longest piece of the client's input echoed back in an error message.
const ECHO_MAX_CHARS: usize = 64;

/// A date property of a key that a filter can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateProperty {
    /// `creationDate`.
    CreationDate,
    /// `deletionDate`.
    DeletionDate,
    /// `expirationDate`.
    ExpirationDate,
    /// `lastRotateDate`.
    LastRotateDate,
    /// `lastUpdateDate`.
    LastUpdateDate,
}

/// How a date term compares the key's date (left) with the term's (right).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    /// No operator.
    Eq,
    /// `lt`: strictly before.
    Lt,
    /// `lte`: before or at.
    Lte,
    /// `gt`: strictly after.
    Gt,
    /// `gte`: at or after.
    Gte,
}

impl Comparison {
    fn from_operator(operator: &str) -> Option<Comparison> {
        match operator {
            "lt" => Some(Comparison::Lt),
            "lte" => Some(Comparison::Lte),
            "gt" => Some(Comparison::Gt),
            "gte" => Some(Comparison::Gte),
            _ => None,
        }
    }

    /// Whether `value <op> bound`.
    pub fn holds(self, value: DateTime<Utc>, bound: DateTime<Utc>) -> bool {
        match self {
            Comparison::Eq => value == bound,
            Comparison::Lt => value < bound,
            Comparison::Lte => value <= bound,
            Comparison::Gt => value > bound,
            Comparison::Gte => value >= bound,
        }
    }
}

/// One date term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateCondition {
    /// `none`: the key does not have this date.
    Absent,
    /// The key has this date and it compares so with the given instant.
    Compare(Comparison, DateTime<Utc>),
}

impl DateCondition {
    /// Whether a key whose date is `value` (`None`: it has none) meets this.
    pub fn holds(&self, value: Option<DateTime<Utc>>) -> bool {
        match (self, value) {
            (DateCondition::Absent, v) => v.is_none(),
            (DateCondition::Compare(op, bound), Some(v)) => op.holds(v, *bound),
            (DateCondition::Compare(..), None) => false,
        }
    }
}

/// A parsed `filter`: every condition must hold. Empty (the default)
/// filters nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyFilter {
    /// Date terms, in the order given.
    pub dates: Vec<(DateProperty, DateCondition)>,
    /// One set of states per `state` term; the key's state must be in each.
    pub states: Vec<Vec<KeyState>>,
    /// One value per `extractable` term.
    pub extractable: Vec<bool>,
}

/// Why a `filter` was refused. The text names the property and, clipped,
/// the part of the input at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The filter is empty.
    #[error("no terms (expected <property>=<value>, separated by spaces)")]
    NoTerms,
    /// A term has no `=`.
    #[error("term {term:?} is not <property>=<value>")]
    NotATerm {
        /// The term, clipped.
        term: String,
    },
    /// A term names a property filters do not know.
    #[error(
        "unknown property {property:?} (expected creationDate, deletionDate, \
         expirationDate, extractable, lastRotateDate, lastUpdateDate or state)"
    )]
    UnknownProperty {
        /// The property, clipped.
        property: String,
    },
    /// A term has nothing after the `=`.
    #[error("{property} has no value")]
    EmptyValue {
        /// The property.
        property: &'static str,
    },
    /// A property appears in more than [`MAX_TERMS_PER_PROPERTY`] terms.
    #[error("more than {MAX_TERMS_PER_PROPERTY} terms of {property}")]
    TooManyTerms {
        /// The property.
        property: &'static str,
    },
    /// A date term's operator is not `lt`, `lte`, `gt` or `gte`.
    #[error("{property}: unknown operator {operator:?} (expected lt, lte, gt or gte)")]
    UnknownOperator {
        /// The property.
        property: &'static str,
        /// The operator, clipped.
        operator: String,
    },
    /// An operator on a property that takes only a value.
    #[error("{property} takes no operator, only a value")]
    OperatorNotAllowed {
        /// The property.
        property: &'static str,
    },
    /// `none` with an operator.
    #[error("{property}: none takes no operator")]
    NoneWithOperator {
        /// The property.
        property: &'static str,
    },
    /// A date that is not in double quotes.
    #[error(
        "{property}: the date must be an RFC 3339 date in double quotes, \
         e.g. \"2022-02-15T00:00:00Z\""
    )]
    NotQuoted {
        /// The property.
        property: &'static str,
    },
    /// A quoted date that is not RFC 3339.
    #[error("{property}: {date:?} is not an RFC 3339 date")]
    BadDate {
        /// The property.
        property: &'static str,
        /// The date, clipped.
        date: String,
    },
    /// `extractable` is neither `true` nor `false`.
    #[error("extractable must be true or false")]
    BadExtractable,
    /// `state` is not a list of Key Protect states.
    #[error("state must be a comma-separated list of 0, 1, 2, 3, 5 without spaces")]
    BadState,
}

/// The properties, in Key Protect's spelling, and what each one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Property {
    Date(DateProperty),
    Extractable,
    State,
}

const PROPERTIES: [(&str, Property); 7] = [
    ("creationDate", Property::Date(DateProperty::CreationDate)),
    ("deletionDate", Property::Date(DateProperty::DeletionDate)),
    (
        "expirationDate",
        Property::Date(DateProperty::ExpirationDate),
    ),
    ("extractable", Property::Extractable),
    (
        "lastRotateDate",
        Property::Date(DateProperty::LastRotateDate),
    ),
    (
        "lastUpdateDate",
        Property::Date(DateProperty::LastUpdateDate),
    ),
    ("state", Property::State),
];

/// `s`, cut to at most [`ECHO_MAX_CHARS`] characters.
fn clip(s: &str) -> String {
    match s.char_indices().nth(ECHO_MAX_CHARS) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_string(),
    }
}

/// Splits `<operator>:<rest>` when the part before the first `:` looks
/// like an operator (letters only), so an unquoted date such as
/// `2022-02-15T00:00:00Z` is not mistaken for one.
fn split_operator(value: &str) -> Option<(&str, &str)> {
    value
        .split_once(':')
        .filter(|(op, _)| !op.is_empty() && op.bytes().all(|b| b.is_ascii_alphabetic()))
}

fn parse_date_condition(name: &'static str, value: &str) -> Result<DateCondition, FilterError> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(DateCondition::Absent);
    }
    let (comparison, quoted) = match split_operator(value) {
        Some((operator, rest)) => {
            let comparison = Comparison::from_operator(operator).ok_or_else(|| {
                FilterError::UnknownOperator {
                    property: name,
                    operator: clip(operator),
                }
            })?;
            if rest.eq_ignore_ascii_case("none") {
                return Err(FilterError::NoneWithOperator { property: name });
            }
            (comparison, rest)
        }
        None => (Comparison::Eq, value),
    };
    let date = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .ok_or(FilterError::NotQuoted { property: name })?;
    let bad = || FilterError::BadDate {
        property: name,
        date: clip(date),
    };
    if date.contains('"') {
        return Err(bad());
    }
    let instant = DateTime::parse_from_rfc3339(date).map_err(|_| bad())?;
    Ok(DateCondition::Compare(
        comparison,
        instant.with_timezone(&Utc),
    ))
}

fn parse_extractable(value: &str) -> Result<bool, FilterError> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(FilterError::BadExtractable)
    }
}

fn parse_states(value: &str) -> Result<Vec<KeyState>, FilterError> {
    value
        .split(',')
        .map(|s| match s {
            "0" | "1" | "2" | "3" | "5" => s
                .parse::<u8>()
                .ok()
                .and_then(KeyState::from_u8)
                .ok_or(FilterError::BadState),
            _ => Err(FilterError::BadState),
        })
        .collect()
}

impl KeyFilter {
    /// Parses a `filter` value (already URL-decoded; the caller treats an
    /// empty one as absent, and blanks only are [`FilterError::NoTerms`]).
    /// Terms are separated by one or more ASCII spaces (or other ASCII
    /// whitespace).
    pub fn parse(input: &str) -> Result<KeyFilter, FilterError> {
        let mut filter = KeyFilter::default();
        let mut counts = [0usize; PROPERTIES.len()];
        let mut any = false;
        for term in input.split_ascii_whitespace() {
            any = true;
            let (name, value) = term
                .split_once('=')
                .filter(|(name, _)| !name.is_empty())
                .ok_or_else(|| FilterError::NotATerm { term: clip(term) })?;
            let (index, name, property) = PROPERTIES
                .iter()
                .enumerate()
                .find(|(_, (known, _))| *known == name)
                .map(|(index, (known, property))| (index, *known, *property))
                .ok_or_else(|| FilterError::UnknownProperty {
                    property: clip(name),
                })?;
            if let Some(count) = counts.get_mut(index) {
                *count += 1;
                if *count > MAX_TERMS_PER_PROPERTY {
                    return Err(FilterError::TooManyTerms { property: name });
                }
            }
            if value.is_empty() {
                return Err(FilterError::EmptyValue { property: name });
            }
            match property {
                Property::Date(date) => {
                    let condition = parse_date_condition(name, value)?;
                    filter.dates.push((date, condition));
                }
                Property::Extractable | Property::State if split_operator(value).is_some() => {
                    return Err(FilterError::OperatorNotAllowed { property: name });
                }
                Property::Extractable => filter.extractable.push(parse_extractable(value)?),
                Property::State => filter.states.push(parse_states(value)?),
            }
        }
        if !any {
            return Err(FilterError::NoTerms);
        }
        Ok(filter)
    }

    /// Whether a `state` term was given (the standalone `state` parameter
    /// may then not also be given, and the default of hiding deleted keys
    /// does not apply).
    pub fn has_state(&self) -> bool {
        !self.states.is_empty()
    }

    /// Whether an `extractable` term was given.
    pub fn has_extractable(&self) -> bool {
        !self.extractable.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test date")
            .with_timezone(&Utc)
    }

    fn err(input: &str) -> String {
        KeyFilter::parse(input)
            .expect_err("should be refused")
            .to_string()
    }

    #[test]
    fn every_date_property_and_operator() {
        let props = [
            ("creationDate", DateProperty::CreationDate),
            ("deletionDate", DateProperty::DeletionDate),
            ("expirationDate", DateProperty::ExpirationDate),
            ("lastRotateDate", DateProperty::LastRotateDate),
            ("lastUpdateDate", DateProperty::LastUpdateDate),
        ];
        let ops = [
            ("", Comparison::Eq),
            ("lt:", Comparison::Lt),
            ("lte:", Comparison::Lte),
            ("gt:", Comparison::Gt),
            ("gte:", Comparison::Gte),
        ];
        for (name, prop) in props {
            for (op, cmp) in ops {
                let f = KeyFilter::parse(&format!("{name}={op}\"2022-02-15T00:00:00Z\""))
                    .expect("parse");
                assert_eq!(
                    f,
                    KeyFilter {
                        dates: vec![(prop, DateCondition::Compare(cmp, t("2022-02-15T00:00:00Z")))],
                        ..KeyFilter::default()
                    },
                    "{name}={op}"
                );
            }
            for none in ["none", "NONE", "None"] {
                let f = KeyFilter::parse(&format!("{name}={none}")).expect("parse");
                assert_eq!(f.dates, vec![(prop, DateCondition::Absent)]);
            }
        }
    }

    #[test]
    fn dates_keep_their_precision_and_offset() {
        let f = KeyFilter::parse(r#"creationDate=gt:"2022-02-15T01:00:00.123456+01:00""#)
            .expect("parse");
        assert_eq!(
            f.dates,
            vec![(
                DateProperty::CreationDate,
                DateCondition::Compare(Comparison::Gt, t("2022-02-15T00:00:00.123456Z"))
            )]
        );
    }

    #[test]
    fn extractable_and_state_values() {
        for (v, b) in [("true", true), ("TRUE", true), ("False", false)] {
            let f = KeyFilter::parse(&format!("extractable={v}")).expect("parse");
            assert_eq!(f.extractable, vec![b]);
            assert!(f.has_extractable() && !f.has_state());
        }
        let f = KeyFilter::parse("state=0,1,2,3,5").expect("parse");
        assert_eq!(f.states, vec![KeyState::ALL.to_vec()]);
        assert!(f.has_state() && !f.has_extractable());
        let f = KeyFilter::parse("state=5").expect("parse");
        assert_eq!(f.states, vec![vec![KeyState::Destroyed]]);
    }

    #[test]
    fn terms_combine_and_repeat_up_to_three_times() {
        let f = KeyFilter::parse(
            "lastRotateDate=gte:\"2022-02-15T00:00:00Z\"  \
             lastRotateDate=lt:\"2022-03-15T00:00:00Z\" state=1,2 state=2 extractable=false \
             lastRotateDate=none",
        )
        .expect("parse");
        assert_eq!(
            f,
            KeyFilter {
                dates: vec![
                    (
                        DateProperty::LastRotateDate,
                        DateCondition::Compare(Comparison::Gte, t("2022-02-15T00:00:00Z"))
                    ),
                    (
                        DateProperty::LastRotateDate,
                        DateCondition::Compare(Comparison::Lt, t("2022-03-15T00:00:00Z"))
                    ),
                    (DateProperty::LastRotateDate, DateCondition::Absent),
                ],
                states: vec![
                    vec![KeyState::Active, KeyState::Suspended],
                    vec![KeyState::Suspended]
                ],
                extractable: vec![false],
            }
        );
        // Three of each of every property at once is fine.
        let all = [
            "creationDate=none",
            "deletionDate=none",
            "expirationDate=none",
            "lastRotateDate=none",
            "lastUpdateDate=none",
            "extractable=true",
            "state=1",
        ]
        .iter()
        .flat_map(|term| [*term; 3])
        .collect::<Vec<_>>()
        .join(" ");
        let f = KeyFilter::parse(&all).expect("parse");
        assert_eq!(
            (f.dates.len(), f.states.len(), f.extractable.len()),
            (15, 3, 3)
        );
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            (
                "",
                "no terms (expected <property>=<value>, separated by spaces)",
            ),
            (
                "   ",
                "no terms (expected <property>=<value>, separated by spaces)",
            ),
            ("state", "term \"state\" is not <property>=<value>"),
            ("=1", "term \"=1\" is not <property>=<value>"),
            ("state=1 2", "term \"2\" is not <property>=<value>"),
            (
                "name=foo",
                "unknown property \"name\" (expected creationDate, deletionDate, \
                 expirationDate, extractable, lastRotateDate, lastUpdateDate or state)",
            ),
            (
                "CreationDate=none",
                "unknown property \"CreationDate\" (expected creationDate, deletionDate, \
                 expirationDate, extractable, lastRotateDate, lastUpdateDate or state)",
            ),
            ("state=", "state has no value"),
            ("creationDate=", "creationDate has no value"),
            ("extractable=", "extractable has no value"),
            (
                "state=1 state=2 state=3 state=1",
                "more than 3 terms of state",
            ),
            (
                "lastRotateDate=none lastRotateDate=none lastRotateDate=none lastRotateDate=none",
                "more than 3 terms of lastRotateDate",
            ),
            (
                "creationDate=eq:\"2022-02-15T00:00:00Z\"",
                "creationDate: unknown operator \"eq\" (expected lt, lte, gt or gte)",
            ),
            (
                "creationDate=LT:\"2022-02-15T00:00:00Z\"",
                "creationDate: unknown operator \"LT\" (expected lt, lte, gt or gte)",
            ),
            (
                "creationDate=lte:gte:\"2022-02-15T00:00:00Z\"",
                "creationDate: the date must be an RFC 3339 date in double quotes, \
                 e.g. \"2022-02-15T00:00:00Z\"",
            ),
            (
                "lastRotateDate=lt:none",
                "lastRotateDate: none takes no operator",
            ),
            (
                "creationDate=2022-02-15T00:00:00Z",
                "creationDate: the date must be an RFC 3339 date in double quotes, \
                 e.g. \"2022-02-15T00:00:00Z\"",
            ),
            (
                "creationDate=gt:2022-02-15T00:00:00Z",
                "creationDate: the date must be an RFC 3339 date in double quotes, \
                 e.g. \"2022-02-15T00:00:00Z\"",
            ),
            (
                "creationDate=\"2022-02-15T00:00:00Z",
                "creationDate: the date must be an RFC 3339 date in double quotes, \
                 e.g. \"2022-02-15T00:00:00Z\"",
            ),
            (
                "creationDate=\"",
                "creationDate: the date must be an RFC 3339 date in double quotes, \
                 e.g. \"2022-02-15T00:00:00Z\"",
            ),
            (
                "creationDate=lt:",
                "creationDate: the date must be an RFC 3339 date in double quotes, \
                 e.g. \"2022-02-15T00:00:00Z\"",
            ),
            (
                "expirationDate=\"2022-02-15\"",
                "expirationDate: \"2022-02-15\" is not an RFC 3339 date",
            ),
            (
                "deletionDate=\"2022-02-30T00:00:00Z\"",
                "deletionDate: \"2022-02-30T00:00:00Z\" is not an RFC 3339 date",
            ),
            (
                "lastUpdateDate=\"\"",
                "lastUpdateDate: \"\" is not an RFC 3339 date",
            ),
            (
                "lastUpdateDate=\"none\"",
                "lastUpdateDate: \"none\" is not an RFC 3339 date",
            ),
            (
                "lastUpdateDate=\"2022-02-15T00:00:00Z\"\"",
                "lastUpdateDate: \"2022-02-15T00:00:00Z\\\"\" is not an RFC 3339 date",
            ),
            ("extractable=yes", "extractable must be true or false"),
            ("extractable=\"true\"", "extractable must be true or false"),
            (
                "extractable=gte:true",
                "extractable takes no operator, only a value",
            ),
            ("state=lt:3", "state takes no operator, only a value"),
            (
                "state=4",
                "state must be a comma-separated list of 0, 1, 2, 3, 5 without spaces",
            ),
            (
                "state=1,",
                "state must be a comma-separated list of 0, 1, 2, 3, 5 without spaces",
            ),
            (
                "state=+1",
                "state must be a comma-separated list of 0, 1, 2, 3, 5 without spaces",
            ),
            (
                "state=01",
                "state must be a comma-separated list of 0, 1, 2, 3, 5 without spaces",
            ),
            (
                "state=\"1\"",
                "state must be a comma-separated list of 0, 1, 2, 3, 5 without spaces",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(err(input), *message, "input {input:?}");
        }
    }

    #[test]
    fn echoed_input_is_clipped() {
        let long = "x".repeat(1000);
        let message = err(&format!("{long}=1"));
        assert!(message.len() < 200, "{message}");
        assert!(message.contains(&format!("\"{}...\"", "x".repeat(ECHO_MAX_CHARS))));
        // Clipping respects character boundaries.
        let wide = "é".repeat(100);
        assert!(err(&format!("{wide}=1")).contains(&format!("{}...", "é".repeat(ECHO_MAX_CHARS))));
    }

    #[test]
    fn comparisons_and_absence() {
        let a = t("2022-02-15T00:00:00Z");
        let b = t("2022-02-15T00:00:00.001Z");
        let holds = |op: Comparison| [op.holds(a, a), op.holds(a, b), op.holds(b, a)];
        assert_eq!(holds(Comparison::Eq), [true, false, false]);
        assert_eq!(holds(Comparison::Lt), [false, true, false]);
        assert_eq!(holds(Comparison::Lte), [true, true, false]);
        assert_eq!(holds(Comparison::Gt), [false, false, true]);
        assert_eq!(holds(Comparison::Gte), [true, false, true]);
        assert!(DateCondition::Absent.holds(None));
        assert!(!DateCondition::Absent.holds(Some(a)));
        assert!(!DateCondition::Compare(Comparison::Lte, a).holds(None));
        assert!(DateCondition::Compare(Comparison::Lte, a).holds(Some(a)));
    }

    proptest! {
        #[test]
        fn parse_never_panics(input in ".{0,200}") {
            let _ = KeyFilter::parse(&input);
        }

        #[test]
        fn parse_never_panics_on_near_miss_filters(
            terms in prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "creationDate", "deletionDate", "expirationDate", "extractable",
                        "lastRotateDate", "lastUpdateDate", "state", "", "x",
                    ]),
                    prop::sample::select(vec!["", "lt:", "lte:", "gt:", "gte:", "eq:", ":"]),
                    "[\"a-zA-Z0-9:.,+=-]{0,30}",
                ),
                0..12,
            )
        ) {
            let input = terms
                .iter()
                .map(|(p, op, v)| format!("{p}={op}{v}"))
                .collect::<Vec<_>>()
                .join(" ");
            let _ = KeyFilter::parse(&input);
        }

        #[test]
        fn any_quoted_instant_round_trips(secs in 0i64..4_102_444_800, micros in 0u32..1_000_000) {
            let when = DateTime::from_timestamp(secs, micros * 1000).expect("in range");
            let text = when.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let f = KeyFilter::parse(&format!("lastUpdateDate=lte:\"{text}\"")).expect("parse");
            prop_assert_eq!(
                f.dates,
                vec![(DateProperty::LastUpdateDate, DateCondition::Compare(Comparison::Lte, when))]
            );
        }
    }
}
