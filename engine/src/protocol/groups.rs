//! The groups (or teams) a provider says the user belongs to, from the ID token's claims
//! or the UserInfo response: kept bounded and printable, since they are stored with the
//! session and shown by `status`.

use serde_json::{Map, Value};

use crate::protocol::response::printable;

/// At most this many groups are kept (the first ones, as sent).
pub(crate) const MAX_GROUPS: usize = 32;
/// Each group name is cut to this many characters.
pub(crate) const MAX_GROUP_CHARS: usize = 100;

/// The `groups` claim, else `teams`: an array of strings (other elements are skipped),
/// or one string. Control characters are removed, empty and repeated names dropped.
pub(crate) fn read(claims: &Map<String, Value>) -> Vec<String> {
    let claim = claims
        .get("groups")
        .filter(|v| !v.is_null())
        .or_else(|| claims.get("teams"));
    let names: Vec<&str> = match claim {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(one)) => vec![one.as_str()],
        _ => Vec::new(),
    };
    let mut groups: Vec<String> = Vec::new();
    for name in names {
        let name = printable(name.trim(), MAX_GROUP_CHARS);
        if !name.is_empty() && !groups.contains(&name) {
            groups.push(name);
        }
        if groups.len() == MAX_GROUPS {
            break;
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn groups(claims: Value) -> Vec<String> {
        match claims {
            Value::Object(map) => read(&map),
            _ => unreachable!("an object"),
        }
    }

    #[test]
    fn groups_then_teams_strings_only_bounded_and_printable() {
        assert_eq!(
            groups(json!({"groups": ["eng", 7, "", "eng", "ops\u{1b}[2J", {"name": "x"}]})),
            ["eng", "ops[2J"]
        );
        assert_eq!(groups(json!({"teams": "core"})), ["core"]);
        assert_eq!(groups(json!({"groups": null, "teams": ["a"]})), ["a"]);
        assert!(groups(json!({"groups": {"a": 1}})).is_empty());
        let many: Vec<String> = (0..100).map(|i| format!("g{i}")).collect();
        assert_eq!(groups(json!({ "groups": many })).len(), MAX_GROUPS);
        let long = "x".repeat(500);
        assert_eq!(
            groups(json!({ "groups": [long] }))[0].chars().count(),
            MAX_GROUP_CHARS + 1 // with the ellipsis
        );
    }
}
