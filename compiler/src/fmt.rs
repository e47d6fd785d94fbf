//! The canonical layout of `.arch` files (`archc fmt`). Comments are kept.
//!
//! Works on tokens, not the syntax tree, so comments and blank lines survive; a file must parse
//! before it is formatted (the caller checks), so the token stream is a valid program. Rules:
//! - four spaces of indentation per open brace; at most one blank line in a row, none after
//!   `{` or before `}`, none at the start or end of the file;
//! - one space after `,` and `:`, none before; `name(args)` with no space; `=`, `x`, `+`, `-`
//!   spaced; `*`, `/`, `%` tight (`4*c`), unary minus tight;
//! - inside a family or network body, the second column (what follows a setting or stage
//!   name) is aligned, and so is a merge's (what follows a branch name); a line continued after a trailing comma is indented to that column
//!   (in a block: one level deeper);
//! - a comment after code is separated by two spaces, unless the author aligned it: comments
//!   after code on consecutive lines whose `#` stood in the same column stay aligned, at that
//!   column if the code still leaves two spaces before it, else at the nearest column that does.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Num(String),
    Str(String),
    Punct(char),
    /// A comment and the column (in characters) its `#` stood at in the source.
    Comment(String, usize),
    Newline,
}

fn lex(text: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line_start = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                out.push(Tok::Newline);
                i += 1;
                line_start = i;
            }
            ' ' | '\t' | '\r' => i += 1,
            '#' => {
                let start = i;
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                out.push(Tok::Comment(s.trim_end().to_string(), start - line_start));
            }
            '"' => {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i] != '"' && chars[i] != '\n' {
                    i += 1;
                }
                if i < chars.len() && chars[i] == '"' {
                    i += 1;
                }
                out.push(Tok::Str(chars[start..i].iter().collect()));
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
                {
                    i += 1;
                }
                out.push(Tok::Num(chars[start..i].iter().collect()));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                // `in.c`, `in.h`, `in.w` are one word.
                let ident =
                    |c: Option<&char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_');
                if chars[start..i] == ['i', 'n']
                    && chars.get(i) == Some(&'.')
                    && chars.get(i + 1).is_some_and(|c| "chw".contains(*c))
                    && !ident(chars.get(i + 2))
                {
                    i += 2;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
            c => {
                out.push(Tok::Punct(c));
                i += 1;
            }
        }
    }
    out
}

/// One source line's tokens (without the newline) and whether a blank line preceded it.
struct Line {
    toks: Vec<Tok>,
    blank_before: bool,
}

fn lines(toks: Vec<Tok>) -> Vec<Line> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut newlines = 0;
    for t in toks {
        if t == Tok::Newline {
            if cur.is_empty() {
                newlines += 1;
            } else {
                out.push(Line {
                    toks: std::mem::take(&mut cur),
                    blank_before: newlines > 1,
                });
                newlines = 1;
            }
        } else {
            cur.push(t);
        }
    }
    if !cur.is_empty() {
        out.push(Line {
            toks: cur,
            blank_before: newlines > 1,
        });
    }
    out
}

fn is_op(t: &Tok) -> bool {
    matches!(t, Tok::Punct('+' | '-' | '*' | '/' | '%'))
}

/// Render one line's tokens with canonical spacing (no indentation).
fn render_tokens(toks: &[Tok]) -> String {
    let mut s = String::new();
    let mut prev: Option<&Tok> = None;
    for (k, t) in toks.iter().enumerate() {
        let unary_minus = *t == Tok::Punct('-')
            && match prev {
                None => true,
                Some(p) => is_op(p) || matches!(p, Tok::Punct('(' | ',' | ':' | '=')),
            };
        let prev_unary = k > 0
            && toks[k - 1] == Tok::Punct('-')
            && match k.checked_sub(2).map(|j| &toks[j]) {
                None => true,
                Some(p) => is_op(p) || matches!(p, Tok::Punct('(' | ',' | ':' | '=')),
            };
        let space = match (prev, t) {
            (None, _) => false,
            (_, Tok::Comment(..)) => {
                s.push_str("  ");
                false
            }
            (_, Tok::Punct(',' | ':' | ')')) => false,
            (Some(Tok::Punct('(')), _) => false,
            (Some(Tok::Word(_)), Tok::Punct('(')) => false,
            (_, Tok::Punct('*' | '/' | '%')) => false,
            (Some(Tok::Punct('*' | '/' | '%')), _) => false,
            _ if prev_unary => false,
            _ if unary_minus => !matches!(prev, Some(Tok::Punct('('))),
            _ => true,
        };
        if space {
            s.push(' ');
        }
        match t {
            Tok::Word(w) | Tok::Num(w) | Tok::Str(w) | Tok::Comment(w, _) => s.push_str(w),
            Tok::Punct(c) => s.push(*c),
            Tok::Newline => {}
        }
        prev = Some(t);
    }
    s
}

/// Format a whole file. The text should parse; on text that does not, the result is still
/// text (tokens are never dropped), but no layout is promised.
pub fn format(text: &str) -> String {
    let lines = lines(lex(text));
    let mut out: Vec<String> = Vec::new();
    // Stack of open braces: (is a family/network body, alignment column within the body).
    let mut stack: Vec<(bool, usize)> = Vec::new();
    let mut continuation = false;
    let mut body_kind_next = false;
    // Lines ending in a comment after code: (index in `out`, code, comment, source column).
    let mut trailing: Vec<(usize, String, String, usize)> = Vec::new();
    for (li, line) in lines.iter().enumerate() {
        let all = &line.toks;
        let comment = match all.last() {
            Some(Tok::Comment(c, col)) if all.len() > 1 => Some((c.clone(), *col)),
            _ => None,
        };
        let toks = if comment.is_some() {
            &all[..all.len() - 1]
        } else {
            &all[..]
        };
        let closes_first = toks.first() == Some(&Tok::Punct('}'));
        if closes_first {
            stack.pop();
        }
        let depth = stack.len();
        let in_body = stack.last().map(|(b, _)| *b).unwrap_or(false);
        let align = stack.last().map(|(_, a)| *a).unwrap_or(0);
        // Blank lines: keep one where there was one, except after `{` or before `}`.
        let after_open = out
            .last()
            .is_some_and(|l: &String| l.trim_end().ends_with('{'));
        if line.blank_before && !out.is_empty() && !after_open && !closes_first && !continuation {
            out.push(String::new());
        }
        let indent = " ".repeat(4 * depth);
        let text = if continuation {
            let extra = if in_body { align + 1 } else { 4 };
            format!("{indent}{}{}", " ".repeat(extra), render_tokens(toks))
        } else if in_body
            && !closes_first
            && matches!(toks.first(), Some(Tok::Word(_)))
            && toks.len() > 1
        {
            let head = render_tokens(&toks[..1]);
            let rest = render_tokens(&toks[1..]);
            let pad = (align + 1).saturating_sub(head.chars().count()).max(1);
            format!("{indent}{head}{}{rest}", " ".repeat(pad))
        } else {
            format!("{indent}{}", render_tokens(toks))
        };
        let code = text.trim_end().to_string();
        match comment {
            Some((c, col)) => {
                trailing.push((out.len(), code.clone(), c.clone(), col));
                out.push(format!("{code}  {c}"));
            }
            None => out.push(code),
        }
        // What this line opens or closes (after the first token, already handled).
        let start_kind =
            matches!(toks.first(), Some(Tok::Word(w)) if w == "family" || w == "network");
        if start_kind {
            body_kind_next = true;
        }
        for (k, t) in toks.iter().enumerate() {
            match t {
                Tok::Punct('{') => {
                    // A merge's branches align as a body's stages do.
                    let merge = k > 0
                        && matches!(&toks[k - 1], Tok::Word(w)
                            if ["concat", "add", "mul", "max", "split"].contains(&w.as_str()));
                    let is_body = body_kind_next || merge;
                    body_kind_next = false;
                    let align = if is_body {
                        body_alignment(&lines[li + 1..])
                    } else {
                        0
                    };
                    stack.push((is_body, align));
                }
                Tok::Punct('}') if !(k == 0 && closes_first) => {
                    stack.pop();
                }
                _ => {}
            }
        }
        // A body's `{` is always on its `family`/`network` line (the grammar says so).
        body_kind_next = false;
        continuation = toks.last() == Some(&Tok::Punct(','));
    }
    align_comments(&mut out, &trailing);
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// Keep the alignment of trailing comments the author lined up: a run of two or more
/// consecutive output lines whose comments stood at one source column is aligned again, at
/// that column where every line's code leaves two spaces before it, else at the nearest
/// column that does.
fn align_comments(out: &mut [String], trailing: &[(usize, String, String, usize)]) {
    let mut i = 0;
    while i < trailing.len() {
        let mut j = i + 1;
        while j < trailing.len()
            && trailing[j].0 == trailing[j - 1].0 + 1
            && trailing[j].3 == trailing[i].3
        {
            j += 1;
        }
        if j - i >= 2 {
            let run = &trailing[i..j];
            let widest = run.iter().map(|t| t.1.chars().count()).max().unwrap_or(0);
            let col = run[0].3.max(widest + 2);
            for (idx, code, comment, _) in run {
                let pad = col - code.chars().count();
                out[*idx] = format!("{code}{}{comment}", " ".repeat(pad));
            }
        }
        i = j;
    }
}

/// The width of the longest leading name among the body's own lines (up to its `}`).
fn body_alignment(rest: &[Line]) -> usize {
    let mut depth = 0usize;
    let mut width = 0;
    let mut continuation = false;
    for line in rest {
        let toks = &line.toks;
        if depth == 0 && !continuation && toks.len() > 1 {
            if let Some(Tok::Word(w)) = toks.first() {
                width = width.max(w.chars().count());
            }
        }
        for t in toks {
            match t {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    if depth == 0 {
                        return width;
                    }
                    depth -= 1;
                }
                _ => {}
            }
        }
        let last_code = toks.iter().rev().find(|t| !matches!(t, Tok::Comment(..)));
        continuation = last_code == Some(&Tok::Punct(','));
    }
    width
}

#[cfg(test)]
mod tests {
    use super::format;

    #[test]
    fn input_dimensions_stay_one_word() {
        let src = "block t() {\n    conv 1x1, in.c / 2, groups: in.c\n}\n";
        assert_eq!(
            format(src),
            "block t() {\n    conv 1x1, in.c/2, groups: in.c\n}\n"
        );
    }

    #[test]
    fn spacing_indentation_and_alignment() {
        let src = "# top\n\n\nblock b( c ){\n  conv 3x3 ,c,stride:stride   # down\n\n  conv 1x1, 4 * c+-1\n}\nfamily f(b,n) {\n\n input 3x32x32\n conv1 conv 3x3, 16\n conv2_x b(16) x n, stride: 2,\n shortcut: A\n}\nnetwork n = f(b, 2) with shortcut none\n";
        let want = "# top\n\nblock b(c) {\n    conv 3x3, c, stride: stride  # down\n\n    conv 1x1, 4*c + -1\n}\nfamily f(b, n) {\n    input   3x32x32\n    conv1   conv 3x3, 16\n    conv2_x b(16) x n, stride: 2,\n            shortcut: A\n}\nnetwork n = f(b, 2) with shortcut none\n";
        assert_eq!(format(src), want);
        assert_eq!(format(want), want);
    }
}
