//! The `.arch` language: grammar (`arch.pest`), parser and syntax tree with spans.
//!
//! Contract: `parse(text, file)` returns the syntax tree of a whole file, or every syntax
//! error it could find (pest stops at the first grammar error; number errors are all
//! collected). No name is looked up here; that is the compiler's resolve pass.

pub mod ast;
mod error;

pub use error::{edit_distance, SyntaxError};

use ast::*;
use pest::iterators::Pair;
use pest::Parser as _;
use pest_derive::Parser;

#[derive(Parser)]
#[grammar = "arch.pest"]
struct ArchParser;

/// Parse one file. `file` is stamped on every span.
pub fn parse(text: &str, file: FileId) -> Result<File, Vec<SyntaxError>> {
    if let Some(e) = too_deep(text, file) {
        return Err(vec![e]);
    }
    // Track literal tokens too, so errors can say "expected `,`".
    pest::set_error_detail(true);
    let mut pairs = match ArchParser::parse(Rule::file, text) {
        Ok(p) => p,
        Err(e) => return Err(vec![grammar_error(e, text, file)]),
    };
    let root = pairs.next().expect("pest returns the file rule on success");
    let mut b = Builder {
        file,
        errors: Vec::new(),
    };
    let f = b.file(root);
    if b.errors.is_empty() {
        Ok(f)
    } else {
        Err(b.errors)
    }
}

fn grammar_error(e: pest::error::Error<Rule>, text: &str, file: FileId) -> SyntaxError {
    let mut pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let mut rules: Vec<Rule> = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        pest::error::ErrorVariant::CustomError { .. } => vec![],
    };
    let mut tokens: Vec<String> = vec![];
    // pest's rule-level report stops where the last rule failed; the token-level attempts may
    // have got further (`conv 3x3 16`: the parser wanted `,` before `16`). Use those when they
    // point at the start of a token and name punctuation a person can add.
    if let Some(a) = e.parse_attempts() {
        const PUNCT: &[&str] = &[",", "}", "{", "(", ")", ":", "=", "\n"];
        let punct: Vec<String> = a
            .expected_tokens()
            .iter()
            .map(|t| t.to_string())
            .filter(|t| PUNCT.contains(&t.as_str()))
            .collect();
        let at_token_start = text[..a.max_position.min(text.len())]
            .chars()
            .last()
            .is_some_and(|c| c == ' ' || c == '\t');
        if a.max_position > pos && !punct.is_empty() && at_token_start {
            pos = a.max_position;
            rules.clear();
            tokens = punct;
        }
    }
    let found = found_token(text, pos);
    let (message, label, help) = error::explain(&rules, &tokens, found, text, pos);
    let len = if found == "\n" || found.is_empty() {
        0
    } else {
        found.len()
    };
    let span = Span::new(file, pos, pos + len);
    SyntaxError::Unexpected {
        message,
        at: span.into(),
        label,
        help,
        span,
    }
}

/// Deepest parenthesis nesting an expression may have.
pub const MAX_PAREN_DEPTH: usize = 64;
/// Most operators one expression may chain.
pub const MAX_OPERATORS: usize = 256;

/// Refuse parenthesis nesting beyond the limit before the (recursive) parser sees it.
fn too_deep(text: &str, file: FileId) -> Option<SyntaxError> {
    let mut depth = 0usize;
    let mut minus_run = 0usize;
    let mut in_comment = false;
    let mut in_string = false;
    for (i, c) in text.char_indices() {
        match c {
            '\n' => {
                in_comment = false;
                in_string = false;
            }
            _ if in_comment => {}
            '"' => in_string = !in_string,
            _ if in_string => {}
            '#' => in_comment = true,
            '(' => {
                depth += 1;
                if depth > MAX_PAREN_DEPTH {
                    let span = Span::new(file, i, i + 1);
                    return Some(SyntaxError::TooDeep {
                        what: format!("parentheses nest more than {MAX_PAREN_DEPTH} deep"),
                        at: span.into(),
                        span,
                    });
                }
            }
            ')' => depth = depth.saturating_sub(1),
            '-' => {
                minus_run += 1;
                if minus_run > MAX_PAREN_DEPTH {
                    let span = Span::new(file, i, i + 1);
                    return Some(SyntaxError::TooDeep {
                        what: format!("more than {MAX_PAREN_DEPTH} signs in a row"),
                        at: span.into(),
                        span,
                    });
                }
                continue;
            }
            ' ' | '\t' => continue,
            _ => {}
        }
        minus_run = 0;
    }
    None
}

/// The token at `pos`, for messages: a word, a number, or one character.
fn found_token(text: &str, pos: usize) -> &str {
    let rest = &text[pos.min(text.len())..];
    let Some(c) = rest.chars().next() else {
        return "";
    };
    if c == '\r' || c == '\n' {
        return "\n";
    }
    if c.is_ascii_alphanumeric() || c == '_' {
        let end = rest
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
            .unwrap_or(rest.len());
        return &rest[..end];
    }
    &rest[..c.len_utf8()]
}

struct Builder {
    file: FileId,
    errors: Vec<SyntaxError>,
}

impl Builder {
    fn span(&self, p: &Pair<Rule>) -> Span {
        let s = p.as_span();
        Span::new(self.file, s.start(), s.end())
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    fn file(&mut self, p: Pair<Rule>) -> File {
        let span = self.span(&p);
        let mut items = Vec::new();
        for item in p.into_inner() {
            match item.as_rule() {
                Rule::use_decl => items.push(Item::Use(self.use_decl(item))),
                Rule::block_def => items.push(Item::Block(self.block_def(item))),
                Rule::family_def => items.push(Item::Family(self.family_def(item))),
                Rule::network_def => items.push(Item::Network(self.network_def(item))),
                _ => {}
            }
        }
        File { items, span }
    }

    fn use_decl(&mut self, p: Pair<Rule>) -> UseDecl {
        let span = self.span(&p);
        let s = p
            .into_inner()
            .find(|x| x.as_rule() == Rule::string)
            .expect("use has a string");
        let path_span = self.span(&s);
        let inner = s.into_inner().next().map(|x| x.as_str()).unwrap_or("");
        UseDecl {
            path: inner.to_string(),
            path_span,
            span,
        }
    }

    fn params(&mut self, p: Pair<Rule>) -> Vec<Ident> {
        p.into_inner().map(|x| self.ident(x)).collect()
    }

    fn block_def(&mut self, p: Pair<Rule>) -> BlockDef {
        let span = self.span(&p);
        let mut it = p.into_inner().filter(|x| x.as_rule() != Rule::kw_block);
        let name = self.ident(it.next().unwrap());
        let params = self.params(it.next().unwrap());
        let body_pair = it.next().unwrap();
        let mut body = Vec::new();
        for list in body_pair.into_inner() {
            body.extend(self.segment_list(list));
        }
        BlockDef {
            name,
            params,
            body,
            span,
        }
    }

    fn family_def(&mut self, p: Pair<Rule>) -> FamilyDef {
        let span = self.span(&p);
        let mut it = p.into_inner().filter(|x| x.as_rule() != Rule::kw_family);
        let name = self.ident(it.next().unwrap());
        let params = self.params(it.next().unwrap());
        let body = self.body(it.next().unwrap());
        FamilyDef {
            name,
            params,
            body,
            span,
        }
    }

    fn network_def(&mut self, p: Pair<Rule>) -> NetworkDef {
        let span = self.span(&p);
        let mut it = p.into_inner().filter(|x| x.as_rule() != Rule::kw_network);
        let name = self.ident(it.next().unwrap());
        let rhs = it.next().unwrap();
        let def = match rhs.as_rule() {
            Rule::body => NetworkRhs::Body(self.body(rhs)),
            _ => self.instance(rhs),
        };
        NetworkDef { name, def, span }
    }

    fn instance(&mut self, p: Pair<Rule>) -> NetworkRhs {
        let mut target = None;
        let mut args = None;
        let mut args_span = None;
        let mut with = Vec::new();
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::ident => target = Some(self.ident(x)),
                Rule::call_args => {
                    args_span = Some(self.span(&x));
                    args = Some(x.into_inner().map(|e| self.expr(e)).collect());
                }
                Rule::with_clause => {
                    for s in x.into_inner().filter(|s| s.as_rule() == Rule::setting) {
                        with.push(self.setting(s));
                    }
                }
                _ => {}
            }
        }
        NetworkRhs::Instance {
            target: target.expect("instance has a target"),
            args,
            args_span,
            with,
        }
    }

    fn body(&mut self, p: Pair<Rule>) -> Body {
        let span = self.span(&p);
        let mut settings = Vec::new();
        let mut stages = Vec::new();
        for x in p.into_inner() {
            match x.as_rule() {
                Rule::setting => settings.push(self.setting(x)),
                Rule::stage => stages.push(self.stage(x)),
                _ => {}
            }
        }
        Body {
            settings,
            stages,
            span,
        }
    }

    fn setting(&mut self, p: Pair<Rule>) -> Setting {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let key = self.ident(it.next().unwrap());
        let value = self.value(it.next().unwrap());
        Setting { key, value, span }
    }

    fn stage(&mut self, p: Pair<Rule>) -> Stage {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.ident(it.next().unwrap());
        let segments = self.segment_list(it.next().unwrap());
        Stage {
            name,
            segments,
            span,
        }
    }

    fn segment_list(&mut self, p: Pair<Rule>) -> Vec<Segment> {
        let mut out = Vec::new();
        for s in p.into_inner() {
            match s.as_rule() {
                Rule::layer => out.push(Segment::Layer(self.layer(s))),
                Rule::call => out.push(Segment::Call(self.call(s))),
                _ => {}
            }
        }
        out
    }

    fn layer(&mut self, p: Pair<Rule>) -> Layer {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let k = it.next().unwrap();
        let kind_span = self.span(&k);
        let kind = LayerKind::from_keyword(k.as_str()).expect("grammar only admits layer kinds");
        let mut positional = Vec::new();
        let mut named = Vec::new();
        for a in it {
            match a.as_rule() {
                Rule::positional => {
                    let v = a.into_inner().next().unwrap();
                    positional.push(self.value(v));
                }
                Rule::named_arg => named.push(self.named_arg(a)),
                _ => {}
            }
        }
        Layer {
            kind,
            kind_span,
            positional,
            named,
            span,
        }
    }

    fn named_arg(&mut self, p: Pair<Rule>) -> NamedArg {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.ident(it.next().unwrap());
        let value = self.value(it.next().unwrap());
        NamedArg { name, value, span }
    }

    fn call(&mut self, p: Pair<Rule>) -> Call {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let callee = self.ident(it.next().unwrap());
        let args_pair = it.next().unwrap();
        let args_span = self.span(&args_pair);
        let args = args_pair.into_inner().map(|e| self.expr(e)).collect();
        let mut repeat = None;
        let mut named = Vec::new();
        for x in it {
            match x.as_rule() {
                Rule::repeat => {
                    let e = x.into_inner().find(|y| y.as_rule() == Rule::expr).unwrap();
                    repeat = Some(self.expr(e));
                }
                Rule::named_arg => named.push(self.named_arg(x)),
                _ => {}
            }
        }
        Call {
            callee,
            args,
            args_span,
            repeat,
            named,
            span,
        }
    }

    fn value(&mut self, p: Pair<Rule>) -> Value {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::dims => {
                let mut dims = Vec::new();
                for part in p.as_str().split('x') {
                    match part.parse::<u64>() {
                        Ok(v) => dims.push(v),
                        Err(_) => {
                            self.errors.push(SyntaxError::NumberTooLarge {
                                text: part.to_string(),
                                at: span.into(),
                                span,
                            });
                            dims.push(0);
                        }
                    }
                }
                Value::Dims(dims, span)
            }
            Rule::float => match p.as_str().parse::<f64>() {
                Ok(v) if v.is_finite() => Value::Float(v, span),
                _ => {
                    self.errors.push(SyntaxError::BadFloat {
                        text: p.as_str().to_string(),
                        at: span.into(),
                        span,
                    });
                    Value::Float(0.0, span)
                }
            },
            Rule::word => Value::Word(self.ident(p)),
            _ => Value::Expr(self.expr(p)),
        }
    }

    fn expr(&mut self, p: Pair<Rule>) -> Expr {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::expr | Rule::term => {
                let mut it = p.into_inner();
                let mut lhs = self.expr(it.next().unwrap());
                let mut ops = 0usize;
                while let Some(op) = it.next() {
                    ops += 1;
                    if ops > MAX_OPERATORS {
                        self.errors.push(SyntaxError::TooDeep {
                            what: format!("more than {MAX_OPERATORS} operators in a row"),
                            at: span.into(),
                            span,
                        });
                        return Expr::Int(0, span);
                    }
                    let op = match op.as_str() {
                        "+" => BinOp::Add,
                        "-" => BinOp::Sub,
                        "*" => BinOp::Mul,
                        "/" => BinOp::Div,
                        _ => BinOp::Rem,
                    };
                    let rhs = self.expr(it.next().unwrap());
                    let s = lhs.span().to(rhs.span());
                    lhs = Expr::Binary {
                        op,
                        lhs: Box::new(lhs),
                        rhs: Box::new(rhs),
                        span: s,
                    };
                }
                // Keep the span of the whole parenthesised or single-factor expression.
                if let Expr::Binary { span: s, .. } = &mut lhs {
                    *s = s.to(span);
                }
                lhs
            }
            Rule::neg => {
                let inner = self.expr(p.into_inner().next().unwrap());
                Expr::Neg(Box::new(inner), span)
            }
            Rule::int => match p.as_str().parse::<u64>() {
                Ok(v) => Expr::Int(v, span),
                Err(_) => {
                    self.errors.push(SyntaxError::NumberTooLarge {
                        text: p.as_str().to_string(),
                        at: span.into(),
                        span,
                    });
                    Expr::Int(0, span)
                }
            },
            Rule::ident => Expr::Var(self.ident(p)),
            r => unreachable!("expression rule {r:?}"),
        }
    }
}

#[cfg(test)]
mod tests;
