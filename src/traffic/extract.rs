//! Pulling the name of the pod that served a request out of a response body, so that sampled
//! responses can be counted per pod and then per cluster; and reading a page's `<title>`.
//!
//! The built-in `bookinfo` extractor reads the reviews pod name that Istio's bookinfo
//! productpage prints after `Reviews served by:`. It understands every markup the productpage
//! has shipped with:
//!
//! - images 1.20.1 and later (Tailwind): `Reviews served by: ` ends its line and the pod name
//!   follows on the next line after indentation, once per review (so twice on a good page);
//! - images 1.16.4 to 1.19.1 (Bootstrap): `<dt>Reviews served by:</dt>` and, on the next line,
//!   `<u>reviews-v1-…</u>`;
//! - image 1.20.0: the pod name on the same line as `Reviews served by: `.
//!
//! Any other extractor is a regular expression.

use std::fmt;

use regex::Regex;

/// Text that precedes the reviews pod name on the bookinfo productpage.
const BOOKINFO_MARKER: &str = "Reviews served by:";
/// Text the productpage shows instead when the reviews service failed.
const BOOKINFO_REVIEWS_ERROR: &str = "Error fetching product reviews";
/// Tags skipped between the marker and the pod name (`</dt>`, `<u>` in the Bootstrap markup).
const MAX_SKIPPED_TAGS: usize = 4;

/// How to find the serving pod's name in a response body.
#[derive(Debug, Clone)]
pub enum Extractor {
    /// The reviews pod name on Istio's bookinfo productpage (see the module doc).
    Bookinfo,
    /// A regular expression: the first capture group when it has one, else the whole match.
    Regex(Regex),
    /// The value of a response header (its name in lower case), such as the one a shifted
    /// route sets to say which cluster answered.
    Header(String),
}

/// Why an extractor spec was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// An empty spec.
    #[error("empty extractor: use `bookinfo` or a regex")]
    Empty,
    /// A spec that is not a valid regex.
    #[error("{}", regex_message(.pattern, *.column, .message))]
    InvalidRegex {
        /// The pattern as given.
        pattern: String,
        /// 1-based character column of the error, when the regex parser reports one.
        column: Option<usize>,
        /// What is wrong, as the regex parser says it.
        message: String,
    },
}

fn regex_message(pattern: &str, column: Option<usize>, message: &str) -> String {
    match column {
        Some(column) => format!("invalid regex `{pattern}` at column {column}: {message}"),
        None => format!("invalid regex `{pattern}`: {message}"),
    }
}

impl Extractor {
    /// Parses an extractor spec: `"bookinfo"` selects the built-in bookinfo extractor,
    /// `"header:<name>"` a response header's value, anything else is compiled as a regex.
    ///
    /// # Errors
    ///
    /// An empty spec, or an invalid regex (naming the column of the error when known).
    ///
    /// ```text
    /// let by_header = Extractor::parse(r"served-by: (\S+)")?;
    /// assert_eq!(by_header.extract("served-by: reviews-v3-abc12-xyz34").as_deref(), Some("reviews-v3-abc12-xyz34"));
    /// ```
    pub fn parse(spec: &str) -> Result<Extractor, ExtractError> {
        if spec.is_empty() {
            return Err(ExtractError::Empty);
        }
        if spec == "bookinfo" {
            return Ok(Extractor::Bookinfo);
        }
        if let Some(name) = spec.strip_prefix("header:") {
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() {
                return Err(ExtractError::Empty);
            }
            return Ok(Extractor::Header(name));
        }
        Regex::new(spec)
            .map(Extractor::Regex)
            .map_err(|e| regex_error(spec, &e))
    }

    /// The value found in an answer's headers (names in lower case) or body; see
    /// [`Extractor::extract`].
    pub fn extract_answer(
        &self,
        headers: &std::collections::BTreeMap<String, String>,
        body: &str,
    ) -> Option<String> {
        match self {
            Extractor::Header(name) => headers.get(name).filter(|v| !v.is_empty()).cloned(),
            _ => self.extract(body),
        }
    }

    /// The pod name found in `body`, or `None` when there is none. A regex that matches an empty
    /// string also yields `None`, as does one whose first group did not take part in the match.
    /// A header extractor finds nothing in a body.
    pub fn extract(&self, body: &str) -> Option<String> {
        match self {
            Extractor::Header(_) => None,
            Extractor::Bookinfo => bookinfo_pod(body),
            Extractor::Regex(re) => {
                let captures = re.captures(body)?;
                let group = if re.captures_len() > 1 { 1 } else { 0 };
                let found = captures.get(group)?.as_str();
                (!found.is_empty()).then(|| found.to_string())
            }
        }
    }
}

impl fmt::Display for Extractor {
    /// The spec that [`Extractor::parse`] turns back into this extractor.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Extractor::Bookinfo => f.write_str("bookinfo"),
            Extractor::Regex(re) => f.write_str(re.as_str()),
            Extractor::Header(name) => write!(f, "header:{name}"),
        }
    }
}

/// Builds the error for an invalid regex, reading the column out of the parser's message
/// (`regex` reports it only as text: the pattern, then a line with `^` under the error).
fn regex_error(pattern: &str, error: &regex::Error) -> ExtractError {
    let text = error.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let message = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| sentence_case(&text));
    // Single-line patterns are shown indented by 4 with the caret line right below; multi-line
    // ones are numbered, and their column would need a line too, so none is given.
    let column = if pattern.contains('\n') {
        None
    } else {
        lines.get(2).and_then(|caret| {
            let before = caret.chars().take_while(|c| *c != '^').count();
            (caret.contains('^') && before >= 4).then_some(before - 3)
        })
    };
    ExtractError::InvalidRegex {
        pattern: pattern.to_string(),
        column,
        message,
    }
}

/// Lower-case first letter, no trailing period, as the crate's messages are written.
fn sentence_case(text: &str) -> String {
    let text = text.trim().trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The reviews pod name on a bookinfo productpage (any markup, see the module doc): the first
/// token after `Reviews served by:`, past whitespace and at most a few tags (`</dt>`, `<u>`).
/// `None` when the page shows `Error fetching product reviews`, has no such text, or the token
/// does not look like a pod name (see [`is_pod_name`]); later occurrences are tried in turn.
///
/// ```text
/// let page = "<dl>\n<dt>Reviews served by:</dt>\n<u>reviews-v1-7f8d9c6b5-abcde</u>\n</dl>";
/// assert_eq!(bookinfo_pod(page).as_deref(), Some("reviews-v1-7f8d9c6b5-abcde"));
/// ```
pub fn bookinfo_pod(body: &str) -> Option<String> {
    if body.contains(BOOKINFO_REVIEWS_ERROR) {
        return None;
    }
    body.match_indices(BOOKINFO_MARKER)
        .find_map(|(at, marker)| {
            let after = body.get(at + marker.len()..)?;
            let token = first_text_token(after)?;
            is_pod_name(token).then(|| token.to_string())
        })
}

/// The first run of text in `s` after whitespace and at most [`MAX_SKIPPED_TAGS`] tags, up to
/// the next whitespace or tag.
fn first_text_token(s: &str) -> Option<&str> {
    let mut rest = s.trim_start();
    let mut skipped = 0;
    while rest.starts_with('<') {
        if skipped == MAX_SKIPPED_TAGS {
            return None;
        }
        let end = rest.find('>')?;
        rest = rest.get(end + 1..)?.trim_start();
        skipped += 1;
    }
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '<')
        .unwrap_or(rest.len());
    let token = rest.get(..end)?;
    (!token.is_empty()).then_some(token)
}

/// Whether `s` looks like the name of a pod made by a controller, as its `HOSTNAME` shows it: a
/// DNS-1123 label (1 to 63 lower-case letters, digits and `-`, starting and ending with a
/// letter or digit) with at least one `-` (`reviews-v2-5b6d8c7f9-x2kq9`, `web-0`).
pub fn is_pod_name(s: &str) -> bool {
    super::routes::is_dns_label(s) && s.contains('-')
}

/// The text of the page's first `<title>` element: whitespace trimmed and collapsed, the common
/// HTML entities decoded (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&#39;`, `&apos;`, `&nbsp;` and
/// numeric ones). `None` when there is no title or it is blank.
///
/// ```text
/// assert_eq!(title("<title>Simple Bookstore App</title>").as_deref(), Some("Simple Bookstore App"));
/// ```
pub fn title(body: &str) -> Option<String> {
    // ASCII lower-casing keeps every byte offset, so indices found in `lower` slice `body`.
    let lower = body.to_ascii_lowercase();
    let mut from = 0;
    let content_start = loop {
        let open = from + lower.get(from..)?.find("<title")?;
        let after = open + "<title".len();
        match lower.as_bytes().get(after) {
            Some(b'>') => break after + 1,
            Some(b) if b.is_ascii_whitespace() => break after + lower.get(after..)?.find('>')? + 1,
            _ => from = after,
        }
    };
    let content_end = content_start + lower.get(content_start..)?.find("</title")?;
    let raw = body.get(content_start..content_end)?;
    let text = unescape_html(raw)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (!text.is_empty()).then_some(text)
}

/// Decodes the common named entities and numeric character references; anything else is kept
/// as written.
fn unescape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or_default());
        let tail = rest.get(amp..).unwrap_or_default();
        // Entity names are short; a far-away `;` belongs to something else.
        let decoded = tail.get(..tail.len().min(12)).and_then(|window| {
            let semi = window.find(';')?;
            let entity = window.get(1..semi)?;
            Some((decode_entity(entity)?, semi + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = tail.get(len..).unwrap_or_default();
            }
            None => {
                out.push('&');
                rest = tail.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entity(entity: &str) -> Option<char> {
    match entity {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let number = entity.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse::<u32>().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A review section of the Tailwind productpage (images 1.20.1 and later), as Jinja renders
    /// it: the marker line ends after `Reviews served by: `, the pod name follows on the next line
    /// indented by 18 spaces, then the cluster-name conditional.
    fn tailwind_review(reviewer: &str, pod: &str, cluster: Option<&str>) -> String {
        let cluster = match cluster {
            Some(name) => {
                format!("\n                  on cluster\n                  <div>{name}</div>")
            }
            None => String::new(),
        };
        // Built line by line: the marker line keeps its trailing space.
        [
            "          <section class=\"rounded-lg bg-white p-4 shadow\">".to_string(),
            "            <blockquote class=\"text-gray-800\">".to_string(),
            "              <p>An extremely entertaining play by Shakespeare.</p>".to_string(),
            "            </blockquote>".to_string(),
            format!("            <div class=\"mt-2 text-sm font-semibold\">{reviewer}</div>"),
            "            <div class=\"flex gap-x-1 text-black-500\"><svg></svg></div>".to_string(),
            "            <div class=\"mt-0.5 text-gray-600 font-mono\">".to_string(),
            "              Reviews served by: ".to_string(),
            format!("                  {pod}{cluster}"),
            "              ".to_string(),
            "            </div>".to_string(),
            "          </section>".to_string(),
            String::new(),
        ]
        .join("\n")
    }

    fn tailwind_page(pod: &str, cluster: Option<&str>) -> String {
        format!(
            r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Simple Bookstore App</title>
  <script src="static/tailwind/tailwind.css"></script>
</head>
<body>
  <nav class="bg-gray-800"><div class="text-white">BookInfo Sample</div></nav>
  <main class="mx-auto max-w-7xl">
    <h1 class="text-3xl font-bold">The Comedy of Errors</h1>
    <h4 class="text-xl">Book Details</h4>
    <h4 class="text-xl font-semibold">Book Reviews</h4>
{}{}  </main>
</body>
</html>
"#,
            tailwind_review("Reviewer1", pod, cluster),
            tailwind_review("Reviewer2", pod, cluster)
        )
    }

    /// The Bootstrap productpage (images 1.16.4 to 1.19.1): one `<dl>` after the review loop.
    fn bootstrap_page(pod: &str) -> String {
        format!(
            r##"<!DOCTYPE html>
<html>
  <head>
    <title>Simple Bookstore App</title>
    <meta name="viewport" content="width=device-width, initial-scale=1.0">
    <link href="static/bootstrap/css/bootstrap.min.css" rel="stylesheet">
  </head>
  <body>
<nav class="navbar navbar-inverse navbar-static-top">
  <div class="container"><a href="#" class="navbar-brand">BookInfo Sample</a></div>
</nav>
<div class="container-fluid">
  <div class="row"><div class="col-md-12"><h3 class="text-center text-primary">The Comedy of Errors</h3></div></div>
  <div class="row">
    <div class="col-md-6"><h4 class="text-center text-primary">Book Details</h4></div>
    <div class="col-md-6">
      <h4 class="text-center text-primary">Book Reviews</h4>
      <blockquote>
        <p>An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!</p>
        <small>Reviewer1</small>
      </blockquote>
      <blockquote>
        <p>Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.</p>
        <small>Reviewer2</small>
      </blockquote>
      <dl>
        <dt>Reviews served by:</dt>
        <u>{pod}</u>
      </dl>
    </div>
  </div>
</div>
  </body>
</html>
"##
        )
    }

    const POD: &str = "reviews-v2-5b6d8c7f9-x2kq9";

    #[test]
    fn current_tailwind_markup() {
        let page = tailwind_page(POD, None);
        assert_eq!(page.matches(BOOKINFO_MARKER).count(), 2);
        assert!(page.contains("Reviews served by: \n"));
        assert_eq!(bookinfo_pod(&page).as_deref(), Some(POD));
        assert_eq!(Extractor::Bookinfo.extract(&page).as_deref(), Some(POD));
        let page = tailwind_page("reviews-v3-7d9c8b6f5-pq4rs", Some("cluster-east"));
        assert_eq!(
            bookinfo_pod(&page).as_deref(),
            Some("reviews-v3-7d9c8b6f5-pq4rs")
        );
    }

    #[test]
    fn first_of_two_pod_names_wins() {
        let page = format!(
            "{}{}",
            tailwind_review("Reviewer1", "reviews-v1-aaaaa-11111", None),
            tailwind_review("Reviewer2", "reviews-v1-bbbbb-22222", None)
        );
        assert_eq!(
            bookinfo_pod(&page).as_deref(),
            Some("reviews-v1-aaaaa-11111")
        );
    }

    #[test]
    fn older_bootstrap_markup() {
        let page = bootstrap_page("reviews-v1-6b9c7d5f8-lmn45");
        assert_eq!(
            bookinfo_pod(&page).as_deref(),
            Some("reviews-v1-6b9c7d5f8-lmn45")
        );
        assert_eq!(title(&page).as_deref(), Some("Simple Bookstore App"));
    }

    #[test]
    fn same_line_markup_of_image_1_20_0() {
        let page = "<div class=\"mt-0.5 text-gray-600 font-mono\">\n  Reviews served by: reviews-v1-5f6c8b7d9-zz9yy\n</div>";
        assert_eq!(
            bookinfo_pod(page).as_deref(),
            Some("reviews-v1-5f6c8b7d9-zz9yy")
        );
        let compact = "<dt>Reviews served by:</dt><u>reviews-v2-1a2b3c4d5-q1w2e</u>";
        assert_eq!(
            bookinfo_pod(compact).as_deref(),
            Some("reviews-v2-1a2b3c4d5-q1w2e")
        );
    }

    #[test]
    fn reviews_error_page() {
        let page = r#"<html><head><title>Simple Bookstore App</title></head><body>
    <h4 class="text-xl font-semibold">Book Reviews</h4>
    <h4 class="text-red-600">Error fetching product reviews</h4>
    <p>Sorry, product reviews are currently unavailable for this book.</p>
</body></html>"#;
        assert_eq!(bookinfo_pod(page), None);
        assert_eq!(title(page).as_deref(), Some("Simple Bookstore App"));
        // Even if a stale marker were present, the error wins.
        let mixed = format!("{page}\n{}", tailwind_page(POD, None));
        assert_eq!(bookinfo_pod(&mixed), None);
    }

    #[test]
    fn no_pod_name() {
        assert_eq!(bookinfo_pod(""), None);
        assert_eq!(
            bookinfo_pod("<html><body>Product page is healthy</body></html>"),
            None
        );
        // Pages from before the marker was added, an empty pod name, unrendered templates.
        assert_eq!(bookinfo_pod(&bootstrap_page("")), None);
        assert_eq!(bookinfo_pod(&tailwind_page("", Some("cluster-east"))), None);
        assert_eq!(
            bookinfo_pod("Reviews served by: {{ reviews.podname }}"),
            None
        );
        assert_eq!(bookinfo_pod("Reviews served by: null"), None);
        assert_eq!(bookinfo_pod("Reviews served by:"), None);
        assert_eq!(bookinfo_pod("Reviews served by: <u>"), None);
        assert_eq!(
            bookinfo_pod("Reviews served by: <a><b><c><d><e>reviews-v1-a-b"),
            None
        );
        assert_eq!(bookinfo_pod("Reviews served by: Reviews-V1-abc"), None);
    }

    #[test]
    fn pod_name_shape() {
        assert!(is_pod_name(POD));
        assert!(is_pod_name("web-0"));
        assert!(!is_pod_name("reviews"));
        assert!(!is_pod_name("-reviews-v1"));
        assert!(!is_pod_name("reviews-v1-"));
        assert!(!is_pod_name("reviews_v1-x"));
        assert!(!is_pod_name(&format!("a-{}", "b".repeat(62))));
    }

    #[test]
    fn regex_extractor_with_and_without_group() {
        let with_group = Extractor::parse(r"served by: ([a-z0-9-]+)").unwrap();
        assert_eq!(
            with_group
                .extract("<p>served by: productpage-v1-abc12-def34</p>")
                .as_deref(),
            Some("productpage-v1-abc12-def34")
        );
        assert_eq!(with_group.extract("nothing here"), None);
        let whole = Extractor::parse(r"reviews-v\d-[a-z0-9]+-[a-z0-9]+").unwrap();
        assert_eq!(
            whole
                .extract(&bootstrap_page("reviews-v1-6b9c7d5f8-lmn45"))
                .as_deref(),
            Some("reviews-v1-6b9c7d5f8-lmn45")
        );
        // An optional group that did not match, and an empty match, find nothing.
        let optional = Extractor::parse(r"pod=(\w+)?;").unwrap();
        assert_eq!(optional.extract("pod=;"), None);
        let empty = Extractor::parse(r"x*").unwrap();
        assert_eq!(empty.extract("abc"), None);
        assert_eq!(with_group.to_string(), r"served by: ([a-z0-9-]+)");
    }

    #[test]
    fn parse_specs() {
        let header = Extractor::parse("header:X-Served-By").unwrap();
        assert_eq!(header.to_string(), "header:x-served-by");
        let headers = [("x-served-by".to_string(), "target".to_string())].into();
        assert_eq!(
            header.extract_answer(&headers, "").as_deref(),
            Some("target")
        );
        assert_eq!(header.extract("x-served-by: target"), None);
        assert!(matches!(
            Extractor::parse("bookinfo"),
            Ok(Extractor::Bookinfo)
        ));
        assert_eq!(Extractor::Bookinfo.to_string(), "bookinfo");
        assert_eq!(Extractor::parse("").unwrap_err(), ExtractError::Empty);
        let err = Extractor::parse(r"served by: (\S+").unwrap_err();
        assert_eq!(
            err.to_string(),
            r"invalid regex `served by: (\S+` at column 12: unclosed group"
        );
        let err = Extractor::parse("abc)").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid regex `abc)` at column 4: unopened group"
        );
        let err = Extractor::parse("é(").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid regex `é(` at column 2: unclosed group"
        );
        let err = Extractor::parse("a\nb(").unwrap_err();
        assert_eq!(err.to_string(), "invalid regex `a\nb(`: unclosed group");
        let err = Extractor::parse("a{99999999}").unwrap_err();
        assert!(
            matches!(err, ExtractError::InvalidRegex { column: None, .. }),
            "{err}"
        );
        assert!(!err.to_string().ends_with('.'), "{err}");
    }

    #[test]
    fn titles() {
        assert_eq!(
            title(&tailwind_page(POD, None)).as_deref(),
            Some("Simple Bookstore App")
        );
        assert_eq!(
            title("<TITLE>\n  Tom &amp; Jerry&#39;s &lt;Shop&gt;  </TITLE>").as_deref(),
            Some("Tom & Jerry's <Shop>")
        );
        assert_eq!(
            title(r#"<title id="t">A&#x41;&nbsp;B &unknown; & C</title>"#).as_deref(),
            Some("AA B &unknown; & C")
        );
        assert_eq!(
            title("<titles>no</titles><title>yes</title>").as_deref(),
            Some("yes")
        );
        assert_eq!(title("<title>   </title>"), None);
        assert_eq!(title("<title>unterminated"), None);
        assert_eq!(title("<html><body>no title</body></html>"), None);
        assert_eq!(
            title("<title>Ünïcödé — ok</title>").as_deref(),
            Some("Ünïcödé — ok")
        );
    }
}
