//! Warehouses as the store knows them, and routing: which warehouse gets
//! which lines of an order. Pure data and rules; the store keeps the rows
//! (`storage::warehouses`) and routes in the transaction that needs it.
//!
//! A warehouse is a candidate for a line when it is active, ships to the
//! order's country (`countries` empty: everywhere) and stocks the SKU
//! (`sku_prefixes` empty: every SKU, else one of them starts the SKU).
//! Candidates are preferred by `priority` (lower first), then by name. If
//! some warehouses are candidates for every line, the whole order goes to
//! the first of them; otherwise each line goes to its own first candidate,
//! and a line with none is left unrouted, with the reason.

use std::fmt;

use super::values::{CountryCode, FieldError, Sku};

/// Longest warehouse name.
pub const MAX_NAME: usize = 32;
/// Most countries or SKU prefixes one warehouse lists.
pub const MAX_LIST: usize = 250;
/// Longest SKU prefix.
pub const MAX_PREFIX: usize = 100;

/// A warehouse's name: 1 to 32 of `a-z`, `0-9` and `-`. It names the
/// warehouse in URLs, the CLI, the outbox and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WarehouseName(String);

impl WarehouseName {
    /// The warehouse a store's `--peer-url` stands for.
    pub const MAIN: &'static str = "main";

    /// Whether `value` keeps the naming rule. A text that breaks it names
    /// no warehouse, so a lookup by it need not reach the database (which
    /// may refuse it: PostgreSQL text holds no NUL).
    pub fn is_valid(value: &str) -> bool {
        (1..=MAX_NAME).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        if Self::is_valid(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(FieldError::new(
                field,
                format!("must be 1 to {MAX_NAME} characters of a-z, 0-9 and -"),
            ))
        }
    }

    pub fn main() -> Self {
        Self(Self::MAIN.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WarehouseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A warehouse as the store routes to it and syncs with it. Its secret is
/// kept apart (it is never shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warehouse {
    pub name: WarehouseName,
    /// Base URL of the warehouse service.
    pub url: String,
    /// Countries it ships to; empty: everywhere.
    pub countries: Vec<CountryCode>,
    /// SKU prefixes it stocks; empty: every SKU.
    pub sku_prefixes: Vec<String>,
    /// Lower is preferred.
    pub priority: i64,
    /// Inactive: no new lines are routed there; its orders keep syncing.
    pub active: bool,
}

impl Warehouse {
    /// Whether it may get a line of `sku` shipping to `country`.
    pub fn takes(&self, sku: &Sku, country: &CountryCode) -> bool {
        self.active
            && (self.countries.is_empty() || self.countries.contains(country))
            && (self.sku_prefixes.is_empty()
                || self
                    .sku_prefixes
                    .iter()
                    .any(|p| sku.as_str().starts_with(p)))
    }
}

/// Checks a URL for a warehouse: http(s) with a host.
pub fn parse_url(field: &str, value: &str) -> Result<String, FieldError> {
    let ok = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .is_some_and(|rest| {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty()
                && !host.starts_with(':')
                && !rest.contains(|c: char| c.is_whitespace() || c.is_control())
        });
    if ok && value.len() <= 500 {
        Ok(value.trim_end_matches('/').to_owned())
    } else {
        Err(FieldError::new(
            field,
            "must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8001",
        ))
    }
}

/// Parses a list of countries, naming every bad one (`field[i]`).
pub fn parse_countries(
    field: &str,
    values: &[String],
) -> Result<Vec<CountryCode>, Vec<FieldError>> {
    if values.len() > MAX_LIST {
        return Err(vec![FieldError::new(
            field,
            format!("at most {MAX_LIST} countries"),
        )]);
    }
    let mut out: Vec<CountryCode> = Vec::with_capacity(values.len());
    let mut errors = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match CountryCode::parse(&format!("{field}[{i}]"), v) {
            Ok(c) if !out.contains(&c) => out.push(c),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Parses a list of SKU prefixes (non-empty, no surrounding blanks),
/// naming every bad one (`field[i]`).
pub fn parse_prefixes(field: &str, values: &[String]) -> Result<Vec<String>, Vec<FieldError>> {
    if values.len() > MAX_LIST {
        return Err(vec![FieldError::new(
            field,
            format!("at most {MAX_LIST} prefixes"),
        )]);
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    let mut errors = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if v.is_empty() || v.len() > MAX_PREFIX || v.trim() != v || v.chars().any(char::is_control)
        {
            errors.push(FieldError::new(
                format!("{field}[{i}]"),
                format!("must be 1 to {MAX_PREFIX} characters, without surrounding spaces"),
            ));
        } else if !out.contains(v) {
            out.push(v.clone());
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Highest `priority` accepted (either sign).
pub const MAX_PRIORITY: i64 = 1_000_000;
/// Longest secret accepted.
pub const MAX_SECRET: usize = 500;

/// A warehouse as the API and the CLI take it. To add one, `name` and `url`
/// are required; to change one, every field present replaces the field
/// (the name cannot change). A field that is null or left out is not
/// given. `secret` is write-only.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = WarehouseChange)]
#[serde(deny_unknown_fields)]
pub struct WarehouseInput {
    /// 1 to 32 of a-z, 0-9 and -. Cannot change.
    #[schema(schema_with = super::schema::optional_warehouse_name)]
    pub name: Option<String>,
    /// Base URL of the warehouse service.
    #[schema(schema_with = super::schema::optional_warehouse_url)]
    pub url: Option<String>,
    /// ISO 3166-1 alpha-2 codes it ships to; empty: everywhere.
    #[schema(schema_with = super::schema::countries)]
    pub countries: Option<Vec<String>>,
    /// Prefixes of the SKUs it stocks; empty: every SKU.
    #[schema(schema_with = super::schema::sku_prefixes)]
    pub sku_prefixes: Option<Vec<String>>,
    /// Lower is preferred (then the name).
    #[schema(schema_with = super::schema::priority)]
    pub priority: Option<i64>,
    /// Inactive: no new lines are routed there; its orders keep syncing.
    pub active: Option<bool>,
    /// The secret it signs with (write-only; never shown). Default: the
    /// store's own sync secret.
    #[schema(schema_with = super::schema::secret)]
    pub secret: Option<String>,
}

/// Never shows the secret, only whether one is given.
impl fmt::Debug for WarehouseInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WarehouseInput")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("countries", &self.countries)
            .field("sku_prefixes", &self.sku_prefixes)
            .field("priority", &self.priority)
            .field("active", &self.active)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl WarehouseInput {
    /// A new warehouse and its secret, or every invalid field.
    pub fn create(&self) -> Result<(Warehouse, Option<String>), Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = match &self.name {
            Some(n) => WarehouseName::parse("name", n)
                .map_err(|e| errors.push(e))
                .ok(),
            None => {
                errors.push(FieldError::new("name", "is required"));
                None
            }
        };
        let url = match &self.url {
            Some(u) => parse_url("url", u).map_err(|e| errors.push(e)).ok(),
            None => {
                errors.push(FieldError::new("url", "is required"));
                None
            }
        };
        let (name, url) = (
            name.unwrap_or_else(WarehouseName::main),
            url.unwrap_or_default(),
        );
        let base = Warehouse {
            name,
            url,
            countries: Vec::new(),
            sku_prefixes: Vec::new(),
            priority: 0,
            active: true,
        };
        let fields = self.fields(&base, &mut errors);
        if errors.is_empty() {
            Ok(fields)
        } else {
            Err(errors)
        }
    }

    /// `current` with the fields present replaced, and the new secret if
    /// one is given (`None`: keep it).
    pub fn apply(
        &self,
        current: &Warehouse,
    ) -> Result<(Warehouse, Option<String>), Vec<FieldError>> {
        let mut errors = Vec::new();
        if self
            .name
            .as_deref()
            .is_some_and(|n| n != current.name.as_str())
        {
            errors.push(FieldError::new(
                "name",
                "cannot change; add a warehouse with the new name and deactivate this one",
            ));
        }
        let mut w = current.clone();
        if let Some(u) = &self.url {
            match parse_url("url", u) {
                Ok(u) => w.url = u,
                Err(e) => errors.push(e),
            }
        }
        let fields = self.fields(&w, &mut errors);
        if errors.is_empty() {
            Ok(fields)
        } else {
            Err(errors)
        }
    }

    /// The optional fields over `base`.
    fn fields(
        &self,
        base: &Warehouse,
        errors: &mut Vec<FieldError>,
    ) -> (Warehouse, Option<String>) {
        let mut w = base.clone();
        if let Some(c) = &self.countries {
            match parse_countries("countries", c) {
                Ok(c) => w.countries = c,
                Err(e) => errors.extend(e),
            }
        }
        if let Some(p) = &self.sku_prefixes {
            match parse_prefixes("sku_prefixes", p) {
                Ok(p) => w.sku_prefixes = p,
                Err(e) => errors.extend(e),
            }
        }
        if let Some(p) = self.priority {
            if (-MAX_PRIORITY..=MAX_PRIORITY).contains(&p) {
                w.priority = p;
            } else {
                errors.push(FieldError::new(
                    "priority",
                    format!("must be between -{MAX_PRIORITY} and {MAX_PRIORITY}"),
                ));
            }
        }
        if let Some(a) = self.active {
            w.active = a;
        }
        let secret = match &self.secret {
            Some(s) if s.is_empty() || s.len() > MAX_SECRET => {
                errors.push(FieldError::new(
                    "secret",
                    format!("must be 1 to {MAX_SECRET} bytes"),
                ));
                None
            }
            Some(s) if s.chars().any(char::is_control) => {
                errors.push(FieldError::new(
                    "secret",
                    "must not contain control characters (tabs, line breaks, NUL…)",
                ));
                None
            }
            other => other.clone(),
        };
        (w, secret)
    }
}

/// Where each line of an order goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// Per line (by index): the warehouse it goes to, or why none.
    pub lines: Vec<Result<WarehouseName, String>>,
}

impl Routing {
    /// The one warehouse every line goes to, if there is one.
    pub fn whole(&self) -> Option<&WarehouseName> {
        let first = self.lines.first()?.as_ref().ok()?;
        self.lines
            .iter()
            .all(|l| l.as_ref().ok() == Some(first))
            .then_some(first)
    }
}

/// Routes `lines` (their SKUs, in order) shipping to `country` among
/// `warehouses`. `refused(warehouse, line)` leaves out a warehouse for a
/// line (one that rejected that SKU for this order).
pub fn route(
    lines: &[&Sku],
    country: &CountryCode,
    warehouses: &[Warehouse],
    refused: impl Fn(&WarehouseName, usize) -> bool,
) -> Routing {
    let mut ranked: Vec<&Warehouse> = warehouses.iter().collect();
    ranked.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then_with(|| a.name.cmp(&b.name))
    });
    let candidate = |w: &Warehouse, i: usize| w.takes(lines[i], country) && !refused(&w.name, i);
    if let Some(all) = ranked
        .iter()
        .find(|w| (0..lines.len()).all(|i| candidate(w, i)))
    {
        return Routing {
            lines: vec![Ok(all.name.clone()); lines.len()],
        };
    }
    Routing {
        lines: (0..lines.len())
            .map(|i| {
                ranked
                    .iter()
                    .find(|w| candidate(w, i))
                    .map(|w| w.name.clone())
                    .ok_or_else(|| {
                        format!(
                            "no active warehouse stocks {} and ships to {}",
                            lines[i].as_str(),
                            country.as_str()
                        )
                    })
            })
            .collect(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An active warehouse for tests (routing's too).
    pub(crate) fn wh(
        name: &str,
        countries: &[&str],
        prefixes: &[&str],
        priority: i64,
    ) -> Warehouse {
        Warehouse {
            name: WarehouseName::parse("name", name).expect("name"),
            url: format!("http://{name}.example"),
            countries: countries
                .iter()
                .map(|c| CountryCode::parse("c", c).expect("country"))
                .collect(),
            sku_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            priority,
            active: true,
        }
    }

    fn sku(s: &str) -> Sku {
        Sku::parse("sku", s).expect("sku")
    }

    fn names(r: &Routing) -> Vec<String> {
        r.lines
            .iter()
            .map(|l| match l {
                Ok(w) => w.to_string(),
                Err(why) => format!("! {why}"),
            })
            .collect()
    }

    #[test]
    fn names_are_short_lower_case_words() {
        assert!(WarehouseName::parse("name", "eu-west-2").is_ok());
        for bad in ["", "EU", "eu_west", "é", &"a".repeat(33)] {
            assert!(WarehouseName::parse("name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_warehouse_that_takes_every_line_gets_the_whole_order() {
        let gb = CountryCode::parse("c", "GB").expect("gb");
        let all = [
            wh("us", &["US"], &[], 0),
            wh("eu", &["GB", "DE"], &["WID-", "BOX-"], 1),
            wh("any", &[], &[], 5),
        ];
        let (a, b) = (sku("WID-1"), sku("BOX-9"));
        let r = route(&[&a, &b], &gb, &all, |_, _| false);
        assert_eq!(names(&r), ["eu", "eu"]);
        assert_eq!(r.whole().map(|w| w.as_str()), Some("eu"));
    }

    #[test]
    fn otherwise_each_line_goes_to_its_own_first_candidate() {
        let gb = CountryCode::parse("c", "GB").expect("gb");
        let all = [
            wh("widgets", &[], &["WID-"], 0),
            wh("boxes", &[], &["BOX-"], 0),
        ];
        let (a, b, c) = (sku("WID-1"), sku("BOX-9"), sku("ZZZ-1"));
        let r = route(&[&a, &b, &c], &gb, &all, |_, _| false);
        assert_eq!(
            names(&r),
            [
                "widgets",
                "boxes",
                "! no active warehouse stocks ZZZ-1 and ships to GB"
            ]
        );
        assert_eq!(r.whole(), None);
    }

    #[test]
    fn priority_then_name_inactive_and_refusals_are_skipped() {
        let us = CountryCode::parse("c", "US").expect("us");
        let mut all = [
            wh("b", &[], &[], 1),
            wh("a", &[], &[], 1),
            wh("z", &[], &[], 0),
        ];
        let a = sku("WID-1");
        assert_eq!(names(&route(&[&a], &us, &all, |_, _| false)), ["z"]);
        all[2].active = false;
        assert_eq!(names(&route(&[&a], &us, &all, |_, _| false)), ["a"]);
        let r = route(&[&a], &us, &all, |w, _| w.as_str() == "a");
        assert_eq!(names(&r), ["b"]);
    }

    #[test]
    fn the_secret_never_shows_in_debug_output() {
        let input = WarehouseInput {
            secret: Some("hunter2-hunter2".into()),
            ..Default::default()
        };
        let shown = format!("{input:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn lists_and_urls_are_checked() {
        assert!(
            parse_countries("countries", &["gb".into(), "GB".into()]).is_ok_and(|c| c.len() == 1)
        );
        let fields = |r: Result<Vec<CountryCode>, Vec<FieldError>>| {
            r.map_err(|e| e.into_iter().map(|e| e.field).collect::<Vec<_>>())
        };
        assert_eq!(
            fields(parse_countries("countries", &["XX".into()])),
            Err(vec!["countries[0]".to_owned()])
        );
        assert_eq!(
            fields(parse_countries(
                "countries",
                &["XX".into(), "GB".into(), "YY".into()]
            )),
            Err(vec!["countries[0]".to_owned(), "countries[2]".to_owned()]),
            "every bad country is named"
        );
        assert!(parse_prefixes("p", &[" WID".into()]).is_err());
        assert_eq!(
            parse_url("url", "http://127.0.0.1:8001/").as_deref(),
            Ok("http://127.0.0.1:8001")
        );
        for bad in ["ftp://x", "http://", "http:// x", "127.0.0.1:8001"] {
            assert!(parse_url("url", bad).is_err(), "{bad}");
        }
    }
}
