//! Listing keys as `GET /keys` does: state and extractable filters, the
//! `filter` parameter, key-ring filter, search by name or alias,
//! multi-field sort, offset/limit, total.

use std::cmp::Ordering;

use chrono::{DateTime, Timelike, Utc};

use super::{KeyProjection, KeyRecord};
use crate::keys::list_filter::{DateProperty, KeyFilter};
use crate::keys::state::KeyState;
use crate::reason::Reason;

/// Page size of a listing that gives no `limit` (Key Protect's default).
pub const DEFAULT_LIMIT: usize = 200;
/// Largest page size accepted.
pub const MAX_LIMIT: usize = 5000;
/// Longest accepted search string.
pub const MAX_SEARCH_LEN: usize = 100;

/// Why a listing parameter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A parameter is malformed or out of range.
    #[error("invalid query parameter {param}: {reason}")]
    Invalid {
        /// The parameter.
        param: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl QueryError {
    /// The reason code of this refusal: a malformed listing parameter.
    pub fn reason(&self) -> Reason {
        Reason::InvalidQuery
    }
}

/// Which text a search matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchScope {
    /// Name or any alias.
    #[default]
    NameOrAlias,
    /// The name only (`name:`).
    Name,
    /// Aliases only (`alias:`).
    Alias,
}

/// A parsed `search` parameter: optional prefixes `not:`, `exact:`,
/// `name:`/`alias:` (any order), and `escape:` to end prefix parsing;
/// matching is case-insensitive, by substring unless `exact:`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Search {
    /// The text searched for.
    pub term: String,
    /// Whole-text match (`exact:`) rather than substring.
    pub exact: bool,
    /// Keys that do not match (`not:`).
    pub negate: bool,
    /// Which text is searched.
    pub scope: SearchScope,
}

impl Search {
    /// Parses a `search` parameter.
    pub fn parse(input: &str) -> Result<Search, QueryError> {
        if input.len() > MAX_SEARCH_LEN {
            return Err(QueryError::Invalid {
                param: "search",
                reason: "too long",
            });
        }
        let mut search = Search::default();
        let mut rest = input;
        loop {
            if let Some(r) = rest.strip_prefix("escape:") {
                rest = r;
                break;
            } else if let Some(r) = rest.strip_prefix("not:") {
                search.negate = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("exact:") {
                search.exact = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("name:") {
                search.scope = SearchScope::Name;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alias:") {
                search.scope = SearchScope::Alias;
                rest = r;
            } else {
                break;
            }
        }
        if rest.is_empty() {
            return Err(QueryError::Invalid {
                param: "search",
                reason: "empty search term",
            });
        }
        search.term = rest.to_lowercase();
        Ok(search)
    }

    /// Whether `key` is selected by this search.
    pub fn matches(&self, key: &KeyRecord) -> bool {
        let hit = |text: &str| {
            let text = text.to_lowercase();
            if self.exact {
                text == self.term
            } else {
                text.contains(&self.term)
            }
        };
        let found = match self.scope {
            SearchScope::Name => hit(&key.name),
            SearchScope::Alias => key.aliases.iter().any(|a| hit(a)),
            SearchScope::NameOrAlias => hit(&key.name) || key.aliases.iter().any(|a| hit(a)),
        };
        found != self.negate
    }
}

/// Sortable fields (Key Protect's `sort` names). Keys without the date a
/// field names sort before keys with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    /// `id`: the key id, as text.
    Id,
    /// `name`: the key's name, as text (case-sensitive).
    Name,
    /// `state`: the Key Protect state number (0 pre-active to 5 destroyed).
    State,
    /// `extractable`: root keys (false) before standard keys.
    Extractable,
    /// `imported`: generated keys (false) before imported ones.
    Imported,
    /// `creationDate`: when the key was created.
    CreationDate,
    /// `lastUpdateDate`: the time of the last event that changed the key.
    LastUpdateDate,
    /// `lastRotateDate`: when the key was last rotated.
    LastRotateDate,
    /// `deletionDate`: when the key was deleted.
    DeletionDate,
    /// `expirationDate`: when the key expires.
    ExpirationDate,
}

/// One sort field; `-field` sorts descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// What to sort by.
    pub field: SortField,
    /// Descending (`-field`) rather than ascending.
    pub descending: bool,
}

impl SortKey {
    /// Parses a comma-separated `sort` parameter, e.g. `-creationDate,id`.
    pub fn parse_list(input: &str) -> Result<Vec<SortKey>, QueryError> {
        input
            .split(',')
            .map(|part| {
                let (descending, name) = match part.strip_prefix('-') {
                    Some(n) => (true, n),
                    None => (false, part),
                };
                let field = match name {
                    "id" => SortField::Id,
                    "name" => SortField::Name,
                    "state" => SortField::State,
                    "extractable" => SortField::Extractable,
                    "imported" => SortField::Imported,
                    "creationDate" => SortField::CreationDate,
                    "lastUpdateDate" => SortField::LastUpdateDate,
                    "lastRotateDate" => SortField::LastRotateDate,
                    "deletionDate" => SortField::DeletionDate,
                    "expirationDate" => SortField::ExpirationDate,
                    _ => {
                        return Err(QueryError::Invalid {
                            param: "sort",
                            reason: "unknown sort field",
                        });
                    }
                };
                Ok(SortKey { field, descending })
            })
            .collect()
    }

    fn compare(&self, a: &KeyRecord, b: &KeyRecord) -> Ordering {
        let ord = match self.field {
            SortField::Id => a.id.cmp(&b.id),
            SortField::Name => a.name.cmp(&b.name),
            SortField::State => a.state.cmp(&b.state),
            SortField::Extractable => a.extractable.cmp(&b.extractable),
            SortField::Imported => a.imported.cmp(&b.imported),
            SortField::CreationDate => a.creation_date.cmp(&b.creation_date),
            SortField::LastUpdateDate => a.last_update_date.cmp(&b.last_update_date),
            SortField::LastRotateDate => a.last_rotate_date.cmp(&b.last_rotate_date),
            SortField::DeletionDate => a.deletion_date.cmp(&b.deletion_date),
            SortField::ExpirationDate => a.expiration_date.cmp(&b.expiration_date),
        };
        if self.descending { ord.reverse() } else { ord }
    }
}

/// A `GET /keys` query. `states` empty, and no `state` term in `filter`,
/// means Key Protect's default (every state but Destroyed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyQuery {
    /// The `state` parameter.
    pub states: Vec<KeyState>,
    /// The `extractable` parameter.
    pub extractable: Option<bool>,
    /// The `filter` parameter; every term must hold as well.
    pub filter: KeyFilter,
    /// Only keys of this key ring.
    pub key_ring_id: Option<String>,
    /// The `search` parameter.
    pub search: Option<Search>,
    /// The `sort` parameter, most significant first.
    pub sort: Vec<SortKey>,
    /// Keys to skip.
    pub offset: usize,
    /// Page size.
    pub limit: usize,
}

impl Default for KeyQuery {
    fn default() -> Self {
        KeyQuery {
            states: Vec::new(),
            extractable: None,
            filter: KeyFilter::default(),
            key_ring_id: None,
            search: None,
            sort: Vec::new(),
            offset: 0,
            limit: DEFAULT_LIMIT,
        }
    }
}

/// One page of keys and the number of keys matching the filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage<'a> {
    /// The page's keys, in order.
    pub keys: Vec<&'a KeyRecord>,
    /// Keys matching the query, across all pages.
    pub total: usize,
}

/// `t` as `GET /keys` shows it: the key resources carry dates to the
/// millisecond (`to_rfc3339_opts(SecondsFormat::Millis)`, which truncates),
/// while the ledger records microseconds. Filters compare this value, so a
/// date copied from a response matches its key exactly.
pub fn as_shown(t: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = t.nanosecond();
    t.with_nanosecond(nanos - nanos % 1_000_000).unwrap_or(t)
}

/// The value of a date property of `key` as a response shows it (`None`
/// when the response has no such date: `lastRotateDate` of a key never
/// rotated, `expirationDate` of a key created without one, `deletionDate`
/// of a key that is not deleted).
fn shown_date(key: &KeyRecord, property: DateProperty) -> Option<DateTime<Utc>> {
    let date = match property {
        DateProperty::CreationDate => Some(key.creation_date),
        DateProperty::LastUpdateDate => Some(key.last_update_date),
        DateProperty::LastRotateDate => key.last_rotate_date,
        DateProperty::ExpirationDate => key.expiration_date,
        DateProperty::DeletionDate => key.deletion_date.filter(|_| key.deleted),
    };
    date.map(as_shown)
}

/// Whether `key` meets every term of `filter`.
fn filter_matches(filter: &KeyFilter, key: &KeyRecord) -> bool {
    filter
        .states
        .iter()
        .all(|states| states.contains(&key.state))
        && filter.extractable.iter().all(|e| key.extractable == *e)
        && filter
            .dates
            .iter()
            .all(|(property, condition)| condition.holds(shown_date(key, *property)))
}

impl KeyQuery {
    fn matches(&self, key: &KeyRecord) -> bool {
        let state_ok = if !self.states.is_empty() {
            self.states.contains(&key.state)
        } else if self.filter.has_state() {
            // The filter's state terms decide (in `filter_matches`).
            true
        } else {
            key.state != KeyState::Destroyed
        };
        state_ok
            && self.extractable.is_none_or(|e| key.extractable == e)
            && self
                .key_ring_id
                .as_ref()
                .is_none_or(|r| &key.key_ring_id == r)
            && self.search.as_ref().is_none_or(|s| s.matches(key))
            && filter_matches(&self.filter, key)
    }
}

impl KeyProjection {
    /// Filters, sorts (by the sort keys, then creation date, then id, so the
    /// order is total) and pages the keys.
    pub fn list(&self, query: &KeyQuery) -> KeyPage<'_> {
        let mut keys: Vec<&KeyRecord> = self.keys.values().filter(|k| query.matches(k)).collect();
        keys.sort_by(|a, b| {
            query
                .sort
                .iter()
                .map(|s| s.compare(a, b))
                .find(|o| o.is_ne())
                .unwrap_or_else(|| a.creation_date.cmp(&b.creation_date).then(a.id.cmp(&b.id)))
        });
        let total = keys.len();
        let limit = query.limit.min(MAX_LIMIT);
        let keys = keys.into_iter().skip(query.offset).take(limit).collect();
        KeyPage { keys, total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::projection::{DualAuthDelete, KeyVersion, RotationPolicy};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test date")
            .with_timezone(&Utc)
    }

    fn record(id: &str, state: KeyState, created: &str) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            name: id.into(),
            description: None,
            aliases: Vec::new(),
            key_ring_id: "default".into(),
            extractable: false,
            imported: false,
            state,
            algorithm: "AES".into(),
            bit_length: 256,
            creation_date: t(created),
            created_by: "test".into(),
            last_update_date: t(created),
            last_rotate_date: None,
            expiration_date: None,
            activation_date: None,
            versions: vec![KeyVersion {
                version: 1,
                id: format!("{id}-v1"),
                creation_date: t(created),
                kcv: String::new(),
                imported: false,
            }],
            dual_auth_delete: DualAuthDelete::default(),
            rotation: RotationPolicy::default(),
            deleted: false,
            deletion_date: None,
            deleted_by: None,
            restore_expiration_date: None,
            purge_allowed_from: None,
            purge_scheduled_on: None,
            last_seq: 0,
        }
    }

    fn ids(p: &KeyProjection, filter: &str) -> Vec<String> {
        let query = KeyQuery {
            filter: KeyFilter::parse(filter).expect("filter"),
            ..KeyQuery::default()
        };
        p.list(&query).keys.iter().map(|k| k.id.clone()).collect()
    }

    #[test]
    fn dates_compare_as_responses_show_them() {
        for s in [
            "2030-01-01T00:00:00.000999Z",
            "2030-01-01T00:00:00.123456789Z",
            "2030-01-01T23:59:59.999999Z",
            "2030-01-01T00:00:00Z",
        ] {
            let shown = t(s).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            assert_eq!(as_shown(t(s)), t(&shown), "{s}");
        }
    }

    #[test]
    fn filter_terms_select_keys() {
        let mut p = KeyProjection::new();
        let mut a = record("a", KeyState::Active, "2030-01-01T00:00:00.000700Z");
        a.last_rotate_date = Some(t("2030-01-02T00:00:00.000400Z"));
        let mut b = record("b", KeyState::Suspended, "2030-01-03T00:00:00Z");
        b.extractable = true;
        b.expiration_date = Some(t("2031-01-01T00:00:00Z"));
        let mut c = record("c", KeyState::Destroyed, "2030-01-04T00:00:00Z");
        c.deleted = true;
        c.deletion_date = Some(t("2030-01-05T00:00:00Z"));
        // Restored: the date lingers in no response, so in no filter.
        let mut d = record("d", KeyState::Active, "2030-01-06T00:00:00Z");
        d.deletion_date = Some(t("2030-01-05T00:00:00Z"));
        for k in [a, b, c, d] {
            p.keys.insert(k.id.clone(), k);
        }
        // Equality at the millisecond a response shows.
        assert_eq!(ids(&p, r#"creationDate="2030-01-01T00:00:00.000Z""#), ["a"]);
        assert_eq!(
            ids(&p, r#"creationDate="2030-01-01T00:00:00.000700Z""#),
            [""; 0]
        );
        assert_eq!(
            ids(&p, r#"lastRotateDate=lte:"2030-01-02T00:00:00Z""#),
            ["a"]
        );
        assert_eq!(
            ids(&p, r#"lastRotateDate=lt:"2030-01-02T00:00:00Z""#),
            [""; 0]
        );
        assert_eq!(ids(&p, "lastRotateDate=none"), ["b", "d"]);
        assert_eq!(
            ids(
                &p,
                r#"creationDate=gt:"2030-01-01T00:00:00Z" creationDate=lte:"2030-01-04T00:00:00Z""#
            ),
            ["b"],
            "destroyed keys stay hidden without a state term"
        );
        assert_eq!(
            ids(&p, r#"creationDate=gt:"2030-01-01T00:00:00Z" state=5,1,2"#),
            ["b", "c", "d"]
        );
        assert_eq!(ids(&p, "state=1,2 state=2,5"), ["b"]);
        assert_eq!(
            ids(&p, "deletionDate=none state=0,1,2,3,5"),
            ["a", "b", "d"]
        );
        assert_eq!(
            ids(&p, r#"deletionDate="2030-01-05T00:00:00Z" state=5,1"#),
            ["c"]
        );
        assert_eq!(ids(&p, "expirationDate=none"), ["a", "d"]);
        assert_eq!(
            ids(&p, r#"expirationDate=gte:"2031-01-01T00:00:00Z""#),
            ["b"]
        );
        assert_eq!(ids(&p, "extractable=TRUE"), ["b"]);
        assert_eq!(ids(&p, "extractable=true extractable=false"), [""; 0]);
        assert_eq!(ids(&p, "lastUpdateDate=none"), [""; 0]);
        // Composes with the standalone parameters and paging; total counts
        // the filtered set.
        let query = KeyQuery {
            filter: KeyFilter::parse("extractable=false").expect("filter"),
            states: vec![KeyState::Active, KeyState::Destroyed],
            offset: 1,
            limit: 1,
            ..KeyQuery::default()
        };
        let page = p.list(&query);
        assert_eq!(page.total, 3);
        assert_eq!(
            page.keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
    }

    #[test]
    fn search_prefixes_parse_in_any_order() {
        let s = Search::parse("not:exact:alias:Prod-Key").expect("parse");
        assert_eq!(
            s,
            Search {
                term: "prod-key".into(),
                exact: true,
                negate: true,
                scope: SearchScope::Alias,
            }
        );
        let s = Search::parse("escape:not:literal").expect("parse");
        assert_eq!((s.term.as_str(), s.negate), ("not:literal", false));
        assert!(Search::parse("").is_err());
        assert!(Search::parse("exact:").is_err());
        assert!(Search::parse(&"x".repeat(MAX_SEARCH_LEN + 1)).is_err());
    }

    #[test]
    fn sort_lists_parse() {
        let keys = SortKey::parse_list("-creationDate,id").expect("parse");
        assert_eq!(
            keys,
            [
                SortKey {
                    field: SortField::CreationDate,
                    descending: true
                },
                SortKey {
                    field: SortField::Id,
                    descending: false
                }
            ]
        );
        assert!(SortKey::parse_list("payload").is_err());
        assert!(SortKey::parse_list("").is_err());
    }
}
