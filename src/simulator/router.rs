//! Method + path template → function, built from the manifest at start-up.
//!
//! Templates use the manifest's `{name}` placeholders. When two templates match one path, the
//! one with more literal segments wins (`/v1/messages/batches` over `/v1/messages/{id}`), so the
//! order of functions in a manifest never changes routing.

use axum::http::Method as HttpMethod;
use percent_encoding::percent_decode_str;

use crate::manifest::Manifest;

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Param(String),
    /// `{+name}` (reserved expansion): one or more segments, slashes kept.
    Rest(String),
}

/// One routable function.
#[derive(Debug, Clone)]
pub struct Route {
    /// The function's Lua name.
    pub function: String,
    pub method: HttpMethod,
    segments: Vec<Segment>,
}

impl Route {
    /// Sorting key: more literal segments first, a `{+rest}` route after fixed ones.
    fn specificity(&self) -> (usize, bool) {
        (
            self.literals(),
            !self.segments.iter().any(|s| matches!(s, Segment::Rest(_))),
        )
    }

    fn literals(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }

    fn matches(&self, parts: &[String]) -> Option<Vec<(String, String)>> {
        let rest_at = self
            .segments
            .iter()
            .position(|s| matches!(s, Segment::Rest(_)));
        let fixed = self.segments.len() - usize::from(rest_at.is_some());
        match rest_at {
            None if parts.len() != self.segments.len() => return None,
            Some(_) if parts.len() <= fixed => return None,
            _ => {}
        }
        // With a `{+rest}`, it takes what the segments after it leave over.
        let taken = parts.len() - fixed;
        let mut params = Vec::new();
        let mut i = 0;
        for seg in &self.segments {
            match seg {
                Segment::Rest(name) => {
                    params.push((name.clone(), parts[i..i + taken].join("/")));
                    i += taken;
                }
                Segment::Literal(l) if *l == parts[i] => i += 1,
                Segment::Literal(_) => return None,
                Segment::Param(_) if parts[i].is_empty() => return None,
                Segment::Param(name) => {
                    params.push((name.clone(), parts[i].clone()));
                    i += 1;
                }
            }
        }
        Some(params)
    }
}

/// What a request path resolves to.
#[derive(Debug)]
pub enum RouteMatch<'a> {
    Found(&'a Route, Vec<(String, String)>),
    /// The path exists, with another method.
    WrongMethod,
    NotFound,
}

#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Every callable function (with a method and a path) of the manifest.
    pub fn build(manifest: &Manifest) -> Self {
        let mut routes = Vec::new();
        for (name, f) in &manifest.functions {
            if f.unsupported.is_some() {
                continue;
            }
            let (Some(method), Some(path)) = (f.method, f.path.as_deref()) else {
                continue;
            };
            let Ok(method) = HttpMethod::from_bytes(method.as_str().as_bytes()) else {
                continue;
            };
            let segments = split(path)
                .into_iter()
                .map(
                    |s| match s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                        Some(p) => match p.strip_prefix('+') {
                            Some(rest) => Segment::Rest(rest.to_string()),
                            None => Segment::Param(p.to_string()),
                        },
                        None => Segment::Literal(s),
                    },
                )
                .collect();
            routes.push(Route {
                function: name.clone(),
                method,
                segments,
            });
        }
        // Most specific first; a stable sort keeps manifest order among equals.
        routes.sort_by_key(|r| std::cmp::Reverse(r.specificity()));
        RouteTable { routes }
    }

    pub fn find(&self, method: &HttpMethod, path: &str) -> RouteMatch<'_> {
        let parts: Vec<String> = split(path)
            .into_iter()
            .map(|p| percent_decode_str(&p).decode_utf8_lossy().into_owned())
            .collect();
        let mut other_method = false;
        for r in &self.routes {
            if let Some(params) = r.matches(&parts) {
                if r.method == *method {
                    return RouteMatch::Found(r, params);
                }
                other_method = true;
            }
        }
        if other_method {
            RouteMatch::WrongMethod
        } else {
            RouteMatch::NotFound
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }
}

fn split(path: &str) -> Vec<String> {
    path.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = r#"
name: t
label: T
summary: t
category: testing
base_url: http://127.0.0.1:1
credentials: {k: {label: K, header: x-key, hint: h}}
functions:
  get_thing:
    {group: g, class: read, summary: s, method: GET, path: "/v1/things/{id}", credential: k,
     params: [{name: id, in: path, required: true, type: string}]}
  list_special:
    {group: g, class: read, summary: s, method: GET, path: /v1/things/special, credential: k}
  delete_thing:
    {group: g, class: write, summary: s, method: DELETE, path: "/v1/things/{id}", credential: k,
     params: [{name: id, in: path, required: true, type: string}]}
"#;

    #[test]
    fn literal_segments_win_and_methods_are_told_apart() {
        let m = Manifest::from_yaml("t.yaml", M).unwrap();
        let t = RouteTable::build(&m);
        match t.find(&HttpMethod::GET, "/v1/things/special") {
            RouteMatch::Found(r, p) => {
                assert_eq!(r.function, "list_special");
                assert!(p.is_empty());
            }
            other => panic!("{other:?}"),
        }
        match t.find(&HttpMethod::DELETE, "/v1/things/a%20b") {
            RouteMatch::Found(r, p) => {
                assert_eq!(r.function, "delete_thing");
                assert_eq!(p, vec![("id".to_string(), "a b".to_string())]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            t.find(&HttpMethod::POST, "/v1/things/x"),
            RouteMatch::WrongMethod
        ));
        assert!(matches!(
            t.find(&HttpMethod::GET, "/v2/nothing"),
            RouteMatch::NotFound
        ));
    }

    #[test]
    fn reserved_expansion_takes_the_rest_of_the_path() {
        // Unlinted: `{+name}` is known to the path lint of the generalised format.
        let m = Manifest::from_trusted_yaml(
            "t.yaml",
            &M.replace("/v1/things/{id}\", credential: k,\n     params: [{name: id, in: path, required: true, type: string}]}\n  list_special", "/v1/files/{+path}/raw\", credential: k,\n     params: [{name: path, in: path, required: true, type: string}]}\n  list_special"),
        )
        .unwrap();
        let t = RouteTable::build(&m);
        match t.find(&HttpMethod::GET, "/v1/files/docs/a%20b/README.md/raw") {
            RouteMatch::Found(r, p) => {
                assert_eq!(r.function, "get_thing");
                assert_eq!(
                    p,
                    vec![("path".to_string(), "docs/a b/README.md".to_string())]
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            t.find(&HttpMethod::GET, "/v1/files/raw"),
            RouteMatch::NotFound
        ));
    }
}
