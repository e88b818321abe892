//! The dashboard at `/`: plain HTML, no framework, no request of its own. One row per
//! user and profile: state, expiry (with a countdown the page's one small script keeps
//! current), last refresh, failures, fallbacks. Every value is escaped.

use std::fmt::Write as _;

use crate::sessions::{Activity, ENV_USER, Sessions, Source};

/// One row of the table.
#[derive(Debug)]
pub struct Row {
    pub user: String,
    pub profile: String,
    pub expires_at: Option<i64>,
    pub activity: Activity,
}

/// HTML-escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// The rows: every stored session, and every user the service has answered.
pub fn rows(sessions: &Sessions) -> Vec<Row> {
    let mut activity = sessions.all_activity();
    let mut rows: Vec<Row> = sessions
        .scheduler
        .entries()
        .into_iter()
        .map(|(key, expires_at)| Row {
            activity: activity.remove(&key).unwrap_or_default(),
            user: key.0,
            profile: key.1,
            expires_at: Some(expires_at),
        })
        .collect();
    rows.extend(activity.into_iter().map(|(key, activity)| Row {
        user: key.0,
        profile: key.1,
        expires_at: None,
        activity,
    }));
    rows.sort_by(|a, b| (&a.user, &a.profile).cmp(&(&b.user, &b.profile)));
    rows
}

fn state_of(row: &Row, now: i64) -> (&'static str, &'static str) {
    match (row.expires_at, row.activity.last_source) {
        (_, Some(Source::ApiKey)) => ("fallback: API key", "fallback"),
        (Some(at), _) if at > now => ("signed in", "ok"),
        (Some(_), _) => ("expired (refresh due)", "warn"),
        (None, _) => ("signed out", "off"),
    }
}

fn when(ms: Option<i64>) -> String {
    ms.map_or_else(
        || "—".to_owned(),
        |ms| {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
            humantime::format_rfc3339_seconds(at).to_string()
        },
    )
}

/// The page.
pub fn render(rows: &[Row], now: i64) -> String {
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tessera serve</title>\
         <style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}\
         .ok{color:#080}.warn{color:#a60}.fallback{color:#b00}.off{color:#777}</style></head><body>\
         <h1>tessera serve</h1>",
    );
    let _ = write!(html, "<p id=\"summary\">{} session(s)</p>", rows.len());
    html.push_str(
        "<table id=\"sessions\"><thead><tr><th>user</th><th>profile</th><th>state</th><th>expires</th>\
         <th>expires in</th><th>last refresh</th><th>failures</th><th>fallbacks</th><th>last error</th></tr></thead><tbody>",
    );
    for row in rows {
        let (state, class) = state_of(row, now);
        let user = if row.user == ENV_USER {
            "(environment)"
        } else {
            &row.user
        };
        let countdown = row
            .expires_at
            .map(|at| {
                format!(
                    "<td class=\"countdown\" data-expires-at=\"{at}\">{}s</td>",
                    (at - now) / 1000
                )
            })
            .unwrap_or_else(|| "<td>—</td>".to_owned());
        let _ = write!(
            html,
            "<tr data-user=\"{u}\" data-profile=\"{p}\"><td class=\"user\">{u}</td><td class=\"profile\">{p}</td>\
             <td class=\"state {class}\">{state}</td><td class=\"expires\">{e}</td>{countdown}<td>{r}</td>\
             <td class=\"failures\">{f}</td><td class=\"fallbacks\">{fb}</td><td>{err}</td></tr>",
            u = escape(user),
            p = escape(&row.profile),
            e = when(row.expires_at),
            r = when(row.activity.last_refresh_at.map(|t| t as i64)),
            f = row.activity.failures,
            fb = row.activity.fallbacks,
            err = escape(row.activity.last_error.as_deref().unwrap_or("")),
        );
    }
    html.push_str(
        "</tbody></table><script>setInterval(function(){document.querySelectorAll('.countdown').forEach(function(td){\
         var s=Math.floor((Number(td.dataset.expiresAt)-Date.now())/1000);td.textContent=s+'s';});},1000);</script>\
         </body></html>",
    );
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let rows = [Row {
            user: "<script>x</script>".into(),
            profile: "p\"&".into(),
            expires_at: Some(2_000),
            activity: Activity {
                last_error: Some("<b>boom</b>".into()),
                ..Activity::default()
            },
        }];
        let html = render(&rows, 1_000);
        assert!(!html.contains("<script>x"));
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(html.contains("p&quot;&amp;"));
        assert!(html.contains("&lt;b&gt;boom"));
    }
}
