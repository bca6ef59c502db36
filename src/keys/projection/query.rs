//! Listing keys as `GET /keys` does: state and extractable filters, key-ring
//! filter, search by name or alias, multi-field sort, offset/limit, total.

use std::cmp::Ordering;

use super::{KeyProjection, KeyRecord};
use crate::keys::state::KeyState;

/// Key Protect's default and largest page sizes.
pub const DEFAULT_LIMIT: usize = 200;
pub const MAX_LIMIT: usize = 5000;
/// Longest accepted search string.
pub const MAX_SEARCH_LEN: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("invalid query parameter {param}: {reason}")]
    Invalid {
        param: &'static str,
        reason: &'static str,
    },
}

impl QueryError {
    pub fn kp_code(&self) -> &'static str {
        "INVALID_QUERY_PARAM_ERR"
    }

    pub fn http_status(&self) -> u16 {
        400
    }
}

/// Which text a search matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchScope {
    /// Name or any alias.
    #[default]
    NameOrAlias,
    Name,
    Alias,
}

/// A parsed `search` parameter: optional prefixes `not:`, `exact:`,
/// `name:`/`alias:` (any order), and `escape:` to end prefix parsing;
/// matching is case-insensitive, by substring unless `exact:`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Search {
    pub term: String,
    pub exact: bool,
    pub negate: bool,
    pub scope: SearchScope,
}

impl Search {
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

/// Sortable fields (Key Protect's `sort` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    Id,
    Name,
    State,
    Extractable,
    Imported,
    CreationDate,
    LastUpdateDate,
    LastRotateDate,
    DeletionDate,
    ExpirationDate,
}

/// One sort field; `-field` sorts descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub field: SortField,
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

/// A `GET /keys` query. `states` empty means Key Protect's default
/// (every state but Destroyed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyQuery {
    pub states: Vec<KeyState>,
    pub extractable: Option<bool>,
    pub key_ring_id: Option<String>,
    pub search: Option<Search>,
    pub sort: Vec<SortKey>,
    pub offset: usize,
    pub limit: usize,
}

impl Default for KeyQuery {
    fn default() -> Self {
        KeyQuery {
            states: Vec::new(),
            extractable: None,
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
    pub keys: Vec<&'a KeyRecord>,
    pub total: usize,
}

impl KeyQuery {
    fn matches(&self, key: &KeyRecord) -> bool {
        let state_ok = if self.states.is_empty() {
            key.state != KeyState::Destroyed
        } else {
            self.states.contains(&key.state)
        };
        state_ok
            && self.extractable.is_none_or(|e| key.extractable == e)
            && self
                .key_ring_id
                .as_ref()
                .is_none_or(|r| &key.key_ring_id == r)
            && self.search.as_ref().is_none_or(|s| s.matches(key))
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
