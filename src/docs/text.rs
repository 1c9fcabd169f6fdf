//! A plain-text rendering of a markdown page for `integrations:docs --format text`: no markup to
//! read around, code indented, tables as aligned columns.

/// Strip markdown markup line by line.
pub fn markdown_to_text(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    let mut in_code = false;
    let mut table: Vec<Vec<String>> = Vec::new();
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            out.push_str("    ");
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let trimmed = line.trim();
        if trimmed.starts_with('|') {
            if !trimmed.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ')) {
                table.push(split_row(trimmed));
            }
            continue;
        }
        flush_table(&mut table, &mut out);
        if trimmed.starts_with("<!--") && trimmed.ends_with("-->") {
            continue;
        }
        let mut text = trimmed.trim_start_matches('#').trim_start().to_string();
        let heading = trimmed.starts_with('#');
        text = inline(&text);
        if heading {
            let upper = text.to_uppercase();
            out.push_str(&upper);
            out.push('\n');
            out.push_str(&"=".repeat(upper.chars().count().min(78)));
        } else {
            let indent = line.len() - line.trim_start().len();
            out.push_str(&" ".repeat(indent));
            out.push_str(&text);
        }
        out.push('\n');
    }
    flush_table(&mut table, &mut out);
    out
}

fn split_row(row: &str) -> Vec<String> {
    let inner = row.trim_matches('|');
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cur.push('|');
                chars.next();
            }
            '|' => cells.push(inline(cur.trim())),
            _ => cur.push(c),
        }
        if c == '|' {
            cur.clear();
        }
    }
    cells.push(inline(cur.trim()));
    cells
}

fn flush_table(table: &mut Vec<Vec<String>>, out: &mut String) {
    if table.is_empty() {
        return;
    }
    let cols = table.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for row in table.iter() {
        for (i, c) in row.iter().enumerate() {
            if i + 1 < cols {
                widths[i] = widths[i].max(c.chars().count()).min(40);
            }
        }
    }
    for row in table.iter() {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            line.push_str(c);
            if i + 1 < row.len() {
                let pad = widths[i].saturating_sub(c.chars().count()) + 2;
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    table.clear();
}

/// Inline markup: `code`, **bold**, *emphasis*, [text](link).
fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find('[') {
        let after = &rest[start + 1..];
        match (after.find("]("), after.find(')')) {
            (Some(mid), Some(_)) => {
                let text = &after[..mid];
                let tail = &after[mid + 2..];
                match tail.find(')') {
                    Some(end) if !text.contains('[') => {
                        out.push_str(&rest[..start]);
                        out.push_str(text);
                        rest = &tail[end + 1..];
                    }
                    _ => {
                        out.push_str(&rest[..=start]);
                        rest = after;
                    }
                }
            }
            _ => break,
        }
    }
    out.push_str(rest);
    out.replace("**", "").replace('`', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_removed() {
        let md = "# Title\n\nSee [`x`](x.md) and **bold**.\n\n| A | B |\n|---|---|\n| `a\\|b` | c |\n\n```lua\nprint(1)\n```\n";
        let text = markdown_to_text(md);
        assert!(text.starts_with("TITLE\n=====\n"), "{text}");
        assert!(text.contains("See x and bold."), "{text}");
        assert!(text.contains("a|b  c"), "{text}");
        assert!(text.contains("    print(1)"), "{text}");
        assert!(!text.contains("```"), "{text}");
    }
}
