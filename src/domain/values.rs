//! Value types that cannot exist invalid ("parse, don't validate").
//!
//! Every constructor is a `parse` that returns a [`FieldError`] naming the
//! field, so callers can collect every problem of a request at once. Nothing
//! here does I/O.

use std::fmt;

/// One invalid field of an input, as shown in a problem+json `errors` list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field, as a path into the request (`lines[0].quantity`).
    #[schema(example = "lines[0].quantity")]
    pub field: String,
    #[schema(example = "must be between 1 and 10000")]
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Collects field errors while a whole input is parsed, so a client learns
/// about every bad field in one answer instead of one per round trip.
#[derive(Debug, Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value if it parsed, records the error otherwise.
    pub fn take<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }
}

/// Longest free-text field unless a field says otherwise (docs/API.md §1.5).
pub const MAX_TEXT: usize = 500;
/// Longest SKU and line name (docs/API.md §1.5).
pub const MAX_SHORT_TEXT: usize = 100;
/// Most lines one order may have; keeps one order well under the body limit.
pub const MAX_LINES: usize = 200;

/// Trimmed, non-empty text of at most `max` characters, without control
/// characters other than newline and tab.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    bounded(field, v, max)
}

/// Like [`required_text`], but absent or blank text is `None`.
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => bounded(field, v, max).map(Some),
    }
}

fn bounded(field: &str, v: &str, max: usize) -> Result<String, FieldError> {
    if v.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if v.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(v.to_owned())
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
                required_text(field, value, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_newtype!(
    /// Stock keeping unit: 1..=100 characters.
    Sku,
    MAX_SHORT_TEXT
);
text_newtype!(
    /// Product name on an order line: 1..=100 characters.
    LineName,
    MAX_SHORT_TEXT
);
text_newtype!(
    /// A required free-text field of at most 500 characters (names, address parts).
    Text,
    MAX_TEXT
);

/// Quantity on one order line: 1..=10000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: i64 = 10_000;

    pub fn parse(field: &str, value: i64) -> Result<Self, FieldError> {
        if (1..=Self::MAX).contains(&value) {
            Ok(Self(value as u32))
        } else {
            Err(FieldError::new(
                field,
                format!("must be between 1 and {}", Self::MAX),
            ))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A well-formed e-mail address (pragmatic check: one `@`, a local part,
/// a dotted domain, no spaces), at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let v = value.trim();
        let bad = || FieldError::new(field, "must be an e-mail address like name@example.com");
        if v.len() > 254 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = v.split_once('@').ok_or_else(bad)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && domain
                .split('.')
                .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(bad());
        }
        Ok(Self(v.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// ISO 3166-1 alpha-2 country code, stored upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let up = value.trim().to_ascii_uppercase();
        if up.len() == 2 && COUNTRIES.split(' ').any(|c| c == up) {
            let b = up.as_bytes();
            Ok(Self([b[0], b[1]]))
        } else {
            Err(FieldError::new(
                field,
                "must be an ISO 3166-1 alpha-2 country code such as GB or US",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters from the table above are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

/// ISO 4217 currency code, stored upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let up = value.trim().to_ascii_uppercase();
        if up.len() == 3 && CURRENCIES.split(' ').any(|c| c == up) {
            let b = up.as_bytes();
            Ok(Self([b[0], b[1], b[2]]))
        } else {
            Err(FieldError::new(
                field,
                "must be an ISO 4217 currency code such as GBP, EUR or USD",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

/// A non-negative amount in minor units (cents) of some currency. Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MinorUnits(i64);

impl MinorUnits {
    /// Upper bound keeps every total of an order far from `i64` overflow
    /// (200 lines × 10,000 units × 10^12 < 2^63).
    pub const MAX: i64 = 1_000_000_000_000;

    pub fn parse(field: &str, value: i64) -> Result<Self, FieldError> {
        if (0..=Self::MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(FieldError::new(
                field,
                format!("must be between 0 and {} minor units", Self::MAX),
            ))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }

    pub fn times(self, q: Quantity) -> MinorUnits {
        MinorUnits(self.0 * i64::from(q.get()))
    }

    pub fn plus(self, other: MinorUnits) -> MinorUnits {
        MinorUnits(self.0 + other.0)
    }
}

/// An amount with its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub minor: MinorUnits,
    pub currency: Currency,
}

/// Every ISO 3166-1 alpha-2 code currently assigned, space-separated (the
/// OpenAPI document lists them too).
pub const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// Active ISO 4217 currency codes, space-separated (the OpenAPI document
/// lists them too).
pub const CURRENCIES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_bounds() {
        assert!(Quantity::parse("q", 0).is_err());
        assert!(Quantity::parse("q", -3).is_err());
        assert_eq!(Quantity::parse("q", 1).map(Quantity::get), Ok(1));
        assert_eq!(Quantity::parse("q", 10_000).map(Quantity::get), Ok(10_000));
        assert!(Quantity::parse("q", 10_001).is_err());
    }

    #[test]
    fn text_is_trimmed_bounded_and_clean() {
        assert_eq!(
            Sku::parse("sku", "  WID-1 ").map(|s| s.0),
            Ok("WID-1".into())
        );
        assert!(Sku::parse("sku", "   ").is_err());
        assert!(Sku::parse("sku", &"x".repeat(101)).is_err());
        assert!(
            Sku::parse("sku", &"é".repeat(100)).is_ok(),
            "counts characters, not bytes"
        );
        assert!(Text::parse("t", "a\u{0}b").is_err());
        assert_eq!(optional_text("n", Some("  "), 10), Ok(None));
    }

    #[test]
    fn email() {
        assert!(Email::parse("e", "ada@example.com").is_ok());
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "a b@example.com",
            "ada@localhost",
            "a@@b.com",
            "a@b..com",
        ] {
            assert!(Email::parse("e", bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn codes() {
        assert_eq!(
            CountryCode::parse("c", "gb").map(|c| c.as_str().to_owned()),
            Ok("GB".into())
        );
        assert!(CountryCode::parse("c", "XX").is_err());
        assert!(CountryCode::parse("c", "GBR").is_err());
        assert_eq!(
            Currency::parse("c", "eur").map(|c| c.as_str().to_owned()),
            Ok("EUR".into())
        );
        assert!(Currency::parse("c", "EU").is_err());
        assert!(Currency::parse("c", "ABC").is_err());
    }

    #[test]
    fn money_is_non_negative_and_bounded() {
        assert!(MinorUnits::parse("p", -1).is_err());
        assert!(MinorUnits::parse("p", MinorUnits::MAX + 1).is_err());
        let q = Quantity::parse("q", 3).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(MinorUnits(1999).times(q).get(), 5997);
    }
}
