//! The demo's HTML: two small pages written by hand, every value escaped.
//!
//! Values reach the markup only through [`esc`], which escapes `& < > " '`, so text from the
//! database (a subtask named `<script>...`) is shown as text, in element content and in
//! attribute values alike. Pages are served with a `Content-Security-Policy` that allows no
//! script at all, as a second wall.

use std::fmt::{self, Display, Write};

use super::subtasks::SubtaskPage;
use crate::tenant::TenantScope;

/// The stylesheet, inline so each page is a single response.
const STYLE: &str = "
:root { color-scheme: light; --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --accent: #2f6fde; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: var(--ink); background: #f5f7fa; }
header { background: #1f2933; color: #fff; padding: 1.25rem 2rem; }
header h1 { margin: 0; font-size: 1.4rem; font-weight: 600; }
header p { margin: .25rem 0 0; color: #cbd2d9; }
main { max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .6rem 1rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); background: #fafbfc; }
tr:last-child td { border-bottom: 0; }
td.done { color: #2e7d32; } td.open { color: var(--muted); }
nav.pager { display: flex; justify-content: space-between; align-items: center; margin: 1rem 0; color: var(--muted); }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
.disabled { color: #9aa5b1; }
.prose { padding: .5rem 1.5rem; }
code { background: #eef2f7; padding: .1rem .3rem; border-radius: 4px; }
footer { color: var(--muted); font-size: .85rem; margin-top: 1rem; }
";

/// Escapes `value`'s text for HTML element content and quoted attribute values.
pub(super) fn esc<T: Display>(value: T) -> Escaped<T> {
    Escaped(value)
}

/// A value whose `Display` output is HTML-escaped.
pub(super) struct Escaped<T>(T);

impl<T: Display> Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(EscapingWriter(f), "{}", self.0)
    }
}

struct EscapingWriter<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl Write for EscapingWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            self.0.write_str(&rest[..at])?;
            self.0.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        self.0.write_str(rest)
    }
}

/// The page head and the dark header bar.
fn open(out: &mut String, title: &str, heading: &str, subtitle: &str) -> fmt::Result {
    write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header><h1>{}</h1><p>{}</p></header>\n<main>\n",
        esc(title),
        esc(heading),
        esc(subtitle),
    )
}

fn close(out: &mut String) {
    out.push_str("</main>\n</body>\n</html>\n");
}

/// One tenant's page of subtasks, with links to the neighbouring pages.
pub(super) fn subtasks(page: &SubtaskPage, tenant: &TenantScope) -> String {
    let mut out = String::with_capacity(8 * 1024);
    // Writing to a String cannot fail.
    let _ = write_subtasks(&mut out, page, tenant);
    out
}

fn write_subtasks(out: &mut String, page: &SubtaskPage, tenant: &TenantScope) -> fmt::Result {
    let slug = tenant.slug();
    open(
        out,
        &format!("Subtasks · {slug}"),
        "Subtasks",
        &format!("tenant {slug} · account {}", tenant.id()),
    )?;
    if page.items.is_empty() {
        writeln!(
            out,
            "<div class=\"card prose\"><p>No subtasks on page {}. \
             <a href=\"/subtasks?page=1\">Back to the first page</a></p></div>",
            esc(page.page)
        )?;
    } else {
        out.push_str(
            "<div class=\"card\"><table>\n<thead><tr><th>Subtask</th><th>Task</th>\
             <th>Project</th><th>Status</th></tr></thead>\n<tbody>\n",
        );
        for item in &page.items {
            let (class, status) = if item.is_complete {
                ("done", "done")
            } else {
                ("open", "open")
            };
            writeln!(
                out,
                "<tr data-account-id=\"{}\" data-subtask-id=\"{}\"><td class=\"name\">{}</td>\
                 <td>{}</td><td>{}</td><td class=\"{class}\">{status}</td></tr>",
                esc(item.account_id),
                esc(item.id),
                esc(&item.name),
                esc(&item.task_name),
                esc(&item.project_name),
            )?;
        }
        out.push_str("</tbody>\n</table></div>\n");
    }
    write_pager(out, page)?;
    writeln!(
        out,
        "<footer>Rows come from a tenant transaction: row-level security shows this tenant's \
         rows and no one else's. The same page as JSON: \
         <a href=\"/api/subtasks?page={0}\"><code>/api/subtasks?page={0}</code></a></footer>",
        esc(page.page)
    )?;
    close(out);
    Ok(())
}

/// The number of the last page (1 when there are no subtasks).
fn last_page(page: &SubtaskPage) -> i64 {
    let per_page = i64::from(page.per_page.max(1));
    ((page.total + per_page - 1) / per_page).max(1)
}

fn write_pager(out: &mut String, page: &SubtaskPage) -> fmt::Result {
    let last = last_page(page);
    out.push_str("<nav class=\"pager\">");
    if page.page > 1 {
        write!(
            out,
            "<a rel=\"prev\" href=\"/subtasks?page={}\">← Previous</a>",
            esc(page.page - 1)
        )?;
    } else {
        out.push_str("<span class=\"disabled\">← Previous</span>");
    }
    write!(
        out,
        "<span>Page {} of {} · {} subtasks</span>",
        esc(page.page),
        esc(last),
        esc(page.total)
    )?;
    if i64::from(page.page) < last {
        write!(
            out,
            "<a rel=\"next\" href=\"/subtasks?page={}\">Next →</a>",
            esc(page.page + 1)
        )?;
    } else {
        out.push_str("<span class=\"disabled\">Next →</span>");
    }
    out.push_str("</nav>\n");
    Ok(())
}

/// The bare base domain's page: what the demo is, and nothing of any tenant. `links` are the
/// tenant URLs to try, given only in embedded mode, where the demo seeded the tenants itself.
pub(super) fn landing(base_domain: &str, links: &[String]) -> String {
    let mut out = String::with_capacity(4 * 1024);
    let _ = write_landing(&mut out, base_domain, links);
    out
}

fn write_landing(out: &mut String, base_domain: &str, links: &[String]) -> fmt::Result {
    open(
        out,
        "rls-tenancy demo",
        "rls-tenancy demo",
        "one view, many tenants, two walls between them",
    )?;
    write!(
        out,
        "<div class=\"card prose\">\n\
         <p>Each tenant has its own subdomain: <code>&lt;tenant&gt;.{}</code>. \
         Its <code>/subtasks</code> page lists that tenant's subtasks, read in a tenant \
         transaction that PostgreSQL row-level security confines to the tenant.</p>\n\
         <p>This page belongs to no tenant and shows none of their data.</p>\n",
        esc(base_domain)
    )?;
    if !links.is_empty() {
        out.push_str("<p>Try the demo tenants:</p>\n<ul>\n");
        for link in links {
            writeln!(out, "<li><a href=\"{0}\">{0}</a></li>", esc(link))?;
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</div>\n");
    close(out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_shown_as_text() {
        let hostile = r#"<script>alert("x")</script> & 'q'"#;
        assert_eq!(
            esc(hostile).to_string(),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"
        );
        assert_eq!(esc("plain é text").to_string(), "plain é text");
        assert_eq!(esc(42).to_string(), "42");
    }

    #[test]
    fn the_landing_page_escapes_its_links() {
        let page = landing("localhost", &["http://a.localhost/\"><script>".into()]);
        assert!(!page.contains("<script>"));
        assert!(page.contains("&quot;&gt;&lt;script&gt;"));
    }
}
