//! The order list: search, filters, a count, sortable columns and pages
//! both ways.
//!
//! Pages seek (keyset), never skip rows by offset: `after=` and `before=`
//! hold the place of the last or first order shown (its sort key and id,
//! [`Seek`]), so a page is as fast deep down the list as at its top and an
//! order created meanwhile never shifts one onto two pages. The sort is a
//! whitelisted `sort=` (`created`, `updated`, `status`, `deliver_by`, `-`
//! first for descending), done in SQL on indexes (migration 18).

use std::fmt::Write as _;

use super::*;
use crate::engine::{Direction, Seek, Sort, SortKey};

/// The list's query, echoed back into its filter form and links.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    sync: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    before: String,
}

pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

pub struct ListRow {
    pub id: String,
    pub number: String,
    pub customer: String,
    pub email: String,
    pub status: Badge,
    /// The cancel request, unanswered or refused (see
    /// [`format::cancel_badge`]).
    pub cancel: Option<format::CancelBadge>,
    pub sync: Badge,
    pub updated: String,
    /// What a picker triages by: the deadline, how many items, where to.
    pub deliver_by: Option<String>,
    pub items: u32,
    pub destination: String,
    /// Store only.
    pub total: Option<String>,
}

/// A column heading: sortable ones link to their sort.
pub struct Heading {
    pub label: &'static str,
    /// The `data-sort` name, when sortable.
    pub key: Option<&'static str>,
    pub href: String,
    /// `ascending`, `descending` on the current sort's column.
    pub aria_sort: Option<&'static str>,
    /// An arrow saying which way, on the current sort's column.
    pub mark: Option<&'static str>,
    pub class: &'static str,
}

#[derive(Template)]
#[template(path = "orders.html")]
pub(super) struct ListPage {
    chrome: Chrome,
    rows: Vec<ListRow>,
    headings: Vec<Heading>,
    q: String,
    statuses: Vec<Choice>,
    syncs: Vec<Choice>,
    sorts: Vec<Choice>,
    /// "128 orders", or "26–50 of 128 orders" on a later page.
    count: String,
    first: Option<String>,
    previous: Option<String>,
    next: Option<String>,
    filtered: bool,
    error: Option<String>,
}

pub(super) fn status_choices(role: Role, current: &str) -> Vec<Choice> {
    let mut out = Vec::new();
    if role.may(Command::RequestCancel) {
        out.push(("open", "Open (no cancel request)"));
        out.push(("cancel_requested", "Cancel requested (any answer)"));
    }
    for s in FulfillmentStatus::ALL {
        out.push((s.as_str(), format::status_label(s)));
    }
    out.into_iter()
        .map(|(value, label)| Choice {
            value,
            label,
            selected: value == current,
        })
        .collect()
}

pub(super) fn sync_choices(current: &str) -> Vec<Choice> {
    SyncState::ALL
        .iter()
        .map(|s| Choice {
            value: s.as_str(),
            label: format::sync_label(*s),
            selected: s.as_str() == current,
        })
        .collect()
}

/// Every `sort=` value, in the sort menu's words (the menu is how a phone,
/// whose list has no column headings, sorts).
const SORTS: [(&str, &str); 8] = [
    ("-created", "Newest first"),
    ("created", "Oldest first"),
    ("-updated", "Recently changed first"),
    ("updated", "Least recently changed first"),
    ("status", "Status: pending first"),
    ("-status", "Status: ended first"),
    ("deliver_by", "Deliver by: soonest first"),
    ("-deliver_by", "Deliver by: latest first"),
];

/// `sort=` as a [`Sort`]: `""` is newest first; anything not in [`SORTS`]
/// is refused.
fn parse_sort(s: &str) -> Option<Sort> {
    if s.is_empty() {
        return Some(Sort::default());
    }
    let (name, descending) = match s.strip_prefix('-') {
        Some(n) => (n, true),
        None => (s, false),
    };
    let key = SortKey::ALL.into_iter().find(|k| k.as_str() == name)?;
    Some(Sort { key, descending })
}

fn sort_param(s: Sort) -> String {
    format!("{}{}", if s.descending { "-" } else { "" }, s.key.as_str())
}

/// A page's position in a link: `{key}.{id}`, or the id alone when the
/// key is the id (sorted by creation).
fn seek_param(s: &Seek) -> String {
    if s.key == 0 {
        s.id.to_string()
    } else {
        format!("{}.{}", s.key, s.id)
    }
}

fn parse_seek(s: &str) -> Option<Seek> {
    let (key, id) = match s.split_once('.') {
        Some((k, id)) => (k.parse().ok()?, id),
        None => (0, s),
    };
    Some(Seek {
        key,
        id: OrderId::parse(id)?,
    })
}

/// Percent-encodes a query value (everything but unreserved characters).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The list's filters, to build its links from.
struct Here<'a> {
    q: &'a str,
    status: &'a str,
    sync: &'a str,
    sort: Sort,
}

impl Here<'_> {
    /// The list with these filters, sorted by `sort`, at `page` (`after=…`
    /// or `before=…`; empty for the first page).
    fn url(&self, sort: Sort, page: &str) -> String {
        let mut u = "/admin/orders?".to_owned();
        for (k, v) in [("q", self.q), ("status", self.status), ("sync", self.sync)] {
            if !v.is_empty() {
                let _ = write!(u, "{k}={}&", enc(v));
            }
        }
        if sort != Sort::default() {
            let _ = write!(u, "sort={}&", sort_param(sort));
        }
        u.push_str(page);
        u.trim_end_matches(['&', '?']).to_owned()
    }

    fn heading(&self, label: &'static str, key: Option<SortKey>, class: &'static str) -> Heading {
        let Some(key) = key else {
            return Heading {
                label,
                key: None,
                href: String::new(),
                aria_sort: None,
                mark: None,
                class,
            };
        };
        let current = self.sort.key == key;
        // A click on the current column turns it round; another column
        // starts the way it is most often read (newest, soonest first).
        let descending = if current {
            !self.sort.descending
        } else {
            matches!(key, SortKey::Created | SortKey::Updated)
        };
        Heading {
            label,
            key: Some(key.as_str()),
            href: self.url(Sort { key, descending }, ""),
            aria_sort: current.then_some(if self.sort.descending {
                "descending"
            } else {
                "ascending"
            }),
            mark: current.then_some(if self.sort.descending {
                "\u{25bc}"
            } else {
                "\u{25b2}"
            }),
            class,
        }
    }
}

pub fn list_row(v: &OrderView) -> ListRow {
    let o = &v.order;
    let f = o.fulfillment.as_ref();
    let a = &o.content.shipping_address;
    // The warehouse (no pricing: money only at the store) counts what its
    // part still holds after rejections; the store, what was ordered.
    let items = o
        .content
        .lines
        .iter()
        .map(|l| match (&v.pricing, f) {
            (None, Some(f)) => f.kept_of(l),
            _ => l.quantity.get(),
        })
        .sum();
    ListRow {
        id: o.id.to_string(),
        number: o.number.clone(),
        customer: o.content.customer.name.to_string(),
        email: o.content.customer.email.as_str().to_owned(),
        status: Badge::status(f.map(|f| f.status)),
        cancel: format::cancel_badge(o.cancel_outcome().as_ref()),
        sync: Badge::sync(v.sync.state),
        updated: format::minute(o.updated_at),
        deliver_by: o.content.deliver_by.map(format::minute),
        items,
        destination: format!("{}, {}", a.city, a.country.as_str()),
        total: v
            .pricing
            .as_ref()
            .map(|p| format::money(p.total(&o.content.lines).get(), p.currency.as_str())),
    }
}

/// `GET /admin/orders`: search, filters, a sort, a page.
pub async fn list(
    State(state): State<AppState>,
    user: AdminUser,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
    echo: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> AdminResult {
    let role = state.engine.role();
    let echo = echo.map(|Query(q)| q).unwrap_or_default();
    let sort = parse_sort(&echo.sort);
    let here = Here {
        q: &echo.q,
        status: &echo.status,
        sync: &echo.sync,
        sort: sort.unwrap_or_default(),
    };
    // The API's own parser: the same filters, the same validation.
    let filter = params.map_err(|e| e.body_text()).and_then(|Query(p)| {
        let mut errors = Vec::new();
        let mut f = match p.filter(role) {
            Ok(f) => Some(f),
            Err(crate::http::error::ApiError::Invalid { errors: e, .. }) => {
                errors.extend(e.iter().map(|e| format!("{} {}", e.field, e.message)));
                None
            }
            Err(_) => return Err("the filters could not be read".to_owned()),
        };
        if sort.is_none() {
            errors.push("sort is not one of the list's orders".into());
        }
        let mut seek = None;
        for (dir, raw) in [
            (Direction::After, &echo.after),
            (Direction::Before, &echo.before),
        ] {
            if raw.is_empty() {
                continue;
            }
            match parse_seek(raw) {
                Some(s) if seek.is_none() => seek = Some((dir, s)),
                Some(_) => errors.push("after and before cannot both be given".into()),
                None => errors.push(format!(
                    "{} is not a page of this list",
                    match dir {
                        Direction::After => "after",
                        Direction::Before => "before",
                    }
                )),
            }
        }
        match (&mut f, errors.is_empty()) {
            (Some(f), true) => {
                f.sort = here.sort;
                f.seek = seek;
                f.limit = PAGE_SIZE;
                Ok(f.clone())
            }
            _ => Err(errors.join("; ")),
        }
    });
    let headings = vec![
        here.heading("Order", Some(SortKey::Created), ""),
        here.heading("Customer", None, ""),
        here.heading("Ship to", None, ""),
        here.heading("Items", None, "num"),
        here.heading("Deliver by (UTC)", Some(SortKey::DeliverBy), ""),
        here.heading("Status", Some(SortKey::Status), ""),
        here.heading("Sync", None, ""),
        here.heading("Updated (UTC)", Some(SortKey::Updated), ""),
    ];
    let mut page = ListPage {
        chrome: Chrome::new(role, &user, "Orders", "orders"),
        rows: Vec::new(),
        headings,
        statuses: status_choices(role, &echo.status),
        syncs: sync_choices(&echo.sync),
        sorts: SORTS
            .iter()
            .map(|(value, label)| Choice {
                value,
                label,
                selected: *value == sort_param(here.sort),
            })
            .collect(),
        filtered: !(echo.q.is_empty() && echo.status.is_empty() && echo.sync.is_empty()),
        count: String::new(),
        first: None,
        previous: None,
        next: None,
        q: echo.q.clone(),
        error: None,
    };
    match filter {
        Ok(f) => {
            let p = state.engine.list_page(&f).await?;
            let shown = p.views.len() as i64;
            let noun = |n: i64| if n == 1 { "order" } else { "orders" };
            page.count = if shown == p.total || shown == 0 {
                format!("{} {}", p.total, noun(p.total))
            } else {
                format!(
                    "{}\u{2013}{} of {} {}",
                    p.before + 1,
                    p.before + shown,
                    p.total,
                    noun(p.total)
                )
            };
            if p.before > 0 {
                page.first = Some(here.url(here.sort, ""));
                page.previous = p
                    .seeks
                    .first()
                    .map(|s| here.url(here.sort, &format!("before={}", enc(&seek_param(s)))));
            }
            if p.before + shown < p.total {
                page.next = p
                    .seeks
                    .last()
                    .map(|s| here.url(here.sort, &format!("after={}", enc(&seek_param(s)))));
            }
            page.rows = p.views.iter().map(list_row).collect();
        }
        Err(e) => page.error = Some(format!("Check the filters: {e}.")),
    }
    let status = if page.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(status, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_and_pages_read_back() {
        for (v, _) in SORTS {
            let s = parse_sort(v).expect(v);
            assert_eq!(sort_param(s), v);
        }
        assert_eq!(parse_sort(""), Some(Sort::default()));
        for bad in ["id", "-", "--created", "created;drop", "Created"] {
            assert_eq!(parse_sort(bad), None, "{bad}");
        }
        let id = OrderId::new();
        for key in [0, 5, 1_767_000_000_000_000, i64::MAX] {
            let s = Seek { key, id };
            assert_eq!(parse_seek(&seek_param(&s)), Some(s));
        }
        assert_eq!(parse_seek("x.y"), None);
        assert_eq!(parse_seek("12"), None);
    }

    #[test]
    fn links_keep_the_filters_and_encode_them() {
        let here = Here {
            q: "a&b=c d",
            status: "",
            sync: "dead",
            sort: Sort::default(),
        };
        assert_eq!(
            here.url(Sort::default(), "after=x"),
            "/admin/orders?q=a%26b%3Dc%20d&sync=dead&after=x"
        );
        let by_status = here.heading("Status", Some(SortKey::Status), "");
        assert_eq!(
            by_status.href,
            "/admin/orders?q=a%26b%3Dc%20d&sync=dead&sort=status"
        );
        assert_eq!(by_status.aria_sort, None);
        let created = here.heading("Order", Some(SortKey::Created), "");
        assert_eq!(created.aria_sort, Some("descending"));
        assert!(created.href.ends_with("sort=created"), "{}", created.href);
    }
}
