//! The bookinfo demo's answers, rendered as its current images render them: the
//! productpage's HTML (Tailwind markup: `<title>Simple Bookstore App</title>`, and per review
//! a line ending in `Reviews served by: ` followed by the reviews pod name on the next line),
//! and the JSON of details, reviews and ratings.

use std::fmt::Write;

use serde_json::{Value, json};

/// The product the demo sells.
pub const PRODUCT_TITLE: &str = "The Comedy of Errors";

/// `descriptionHtml` of the product.
pub const PRODUCT_DESCRIPTION: &str = "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play.";

/// `/api/v1/products`: one product, serialised with `", "` and `": "` separators.
pub fn products_json() -> String {
    format!(
        "[{{\"id\": 0, \"title\": {}, \"descriptionHtml\": {}}}]",
        json!(PRODUCT_TITLE),
        json!(PRODUCT_DESCRIPTION)
    )
}

/// The details service's answer for product `id`.
pub fn details_json(id: i64) -> Value {
    json!({"id": id, "author": "William Shakespeare", "year": 1595, "type": "paperback",
           "pages": 200, "publisher": "PublisherA", "language": "English",
           "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"})
}

/// The ratings service's answer for product `id`.
pub fn ratings_json(id: i64) -> Value {
    json!({"id": id, "ratings": {"Reviewer1": 5, "Reviewer2": 4}})
}

/// What the reviews service knows of the ratings: stars in a colour, or why there are none.
#[derive(Clone, Debug, PartialEq)]
pub enum Ratings {
    /// reviews v1: no ratings shown.
    None,
    /// Stars of this colour (`black` for v2, `red` for v3).
    Stars(&'static str),
    /// The ratings service failed.
    Unavailable,
}

/// The reviews service's answer, served by `pod_name`.
pub fn reviews_json(id: i64, pod_name: &str, ratings: &Ratings) -> Value {
    let review = |reviewer: &str, text: &str, stars: i64| {
        let mut review = json!({"reviewer": reviewer, "text": text});
        match ratings {
            Ratings::None => {}
            Ratings::Stars(color) => review["rating"] = json!({"stars": stars, "color": color}),
            Ratings::Unavailable => {
                review["rating"] = json!({"error": "Ratings service is currently unavailable"});
            }
        }
        review
    };
    json!({
        "id": id.to_string(),
        "podname": pod_name,
        "clustername": "null",
        "reviews": [
            review("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!", 5),
            review("Reviewer2", "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.", 4),
        ],
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

const STAR: &str = "<svg class=\"h-5 w-5 flex-none\" viewBox=\"0 0 20 20\" fill=\"currentColor\" aria-hidden=\"true\"><path d=\"M10 2l2.4 5.3 5.6.5-4.3 3.7 1.3 5.5L10 14.1 5 17l1.3-5.5L2 7.8l5.6-.5z\"/></svg>";
const EMPTY_STAR: &str = "<svg class=\"h-5 w-5 flex-none\" viewBox=\"0 0 20 20\" fill=\"none\" stroke=\"currentColor\" aria-hidden=\"true\"><path d=\"M10 2l2.4 5.3 5.6.5-4.3 3.7 1.3 5.5L10 14.1 5 17l1.3-5.5L2 7.8l5.6-.5z\"/></svg>";

/// The productpage for product 0, given the details (`None`: the call failed) and the reviews
/// answer (`None`: the call failed).
pub fn product_page(details: Option<&Value>, reviews: Option<&Value>) -> String {
    let mut page = String::with_capacity(6 * 1024);
    page.push_str("<meta charset=\"utf-8\">\n<meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1.0\">\n\n<title>Simple Bookstore App</title>\n<script src=\"static/tailwind/tailwind.css\"></script>\n\n");
    page.push_str("<nav class=\"bg-gray-800\">\n  <div class=\"container mx-auto px-4 sm:px-6 lg:px-8\">\n    <div class=\"relative flex h-16 items-center justify-between\">\n      <a href=\"#\" class=\"text-white px-3 py-2 text-lg font-medium\" aria-current=\"page\">BookInfo Sample</a>\n      <button type=\"button\" id=\"sign-in-button\" class=\"rounded-md bg-blue-600 px-3.5 py-2.5 text-sm font-semibold text-white\">\n        Sign in\n      </button>\n    </div>\n  </div>\n</nav>\n\n");
    let _ = write!(
        page,
        "<div class=\"container mt-8 mx-auto px-4 sm:px-6 lg:px-8\">\n  <h1 class=\"text-5xl font-bold tracking-tight text-blue-900\">{}</h1>\n  <div class=\"mt-6 max-w-4xl\">\n    <p class=\"mt-6 text-xl leading-8 text-gray-600\">{}</p>\n  </div>\n</div>\n\n",
        escape(PRODUCT_TITLE),
        PRODUCT_DESCRIPTION
    );
    page.push_str("<div class=\"container mt-8 mx-auto px-4 sm:px-6 lg:px-8\">\n  <div class=\"mt-4 py-10\">\n    <div class=\"max-w-2xl\">\n");
    match details {
        Some(details) => {
            let field = |key: &str| escape(&crate::object::scalar_text(&details[key]));
            let _ = write!(
                page,
                "      <h4 class=\"text-3xl font-semibold\">Book Details</h4>\n      <table class=\"min-w-full divide-y divide-gray-300\">\n        <thead><tr><th>ISBN-10</th><th>Publisher</th><th>Pages</th><th>Type</th><th>Language</th></tr></thead>\n        <tbody>\n          <tr>\n            <td>{}</td>\n            <td>{}</td>\n            <td>{}</td>\n            <td>{}</td>\n            <td>{}</td>\n          </tr>\n        </tbody>\n      </table>\n",
                field("ISBN-10"),
                field("publisher"),
                field("pages"),
                field("type"),
                field("language")
            );
        }
        None => page.push_str("      <p class=\"text-2xl text-red-500\">Error fetching product details</p>\n      <p class=\"text-lg text-gray-600\">Sorry, product details are currently unavailable for this book.</p>\n"),
    }
    page.push_str("    </div>\n  </div>\n</div>\n\n<div class=\"bg-blue-600/5 py-12 mx-auto\">\n  <div class=\"container mx-auto px-4 sm:px-6 lg:px-8\">\n    <div class=\"max-w-2xl\">\n");
    match reviews {
        Some(reviews) => {
            let pod = escape(reviews["podname"].as_str().unwrap_or_default());
            page.push_str("      <h4 class=\"text-3xl font-semibold\">Book Reviews</h4>\n      <div class=\"flex flex-col md:flex-row\">\n");
            for review in reviews["reviews"].as_array().into_iter().flatten() {
                page.push_str("        <section class=\"px-6 py-12 sm:py-8 lg:px-8\">\n          <div class=\"mx-auto max-w-2xl\">\n");
                if let Some(stars) = review.pointer("/rating/stars").and_then(Value::as_i64) {
                    let color = escape(review.pointer("/rating/color").and_then(Value::as_str).unwrap_or("black"));
                    let _ = writeln!(page, "            <div class=\"flex gap-x-1 text-{color}-500\">");
                    for n in 0..5 {
                        page.push_str("              ");
                        page.push_str(if n < stars { STAR } else { EMPTY_STAR });
                        page.push('\n');
                    }
                    page.push_str("            </div>\n");
                } else if let Some(error) = review.pointer("/rating/error").and_then(Value::as_str) {
                    let _ = writeln!(page, "            <p class=\"text-red-500\">{}</p>", escape(error));
                }
                let _ = write!(
                    page,
                    "            <blockquote class=\"mt-10 text-xl font-semibold leading-8 text-gray-900\">\n              <p>\"{}\"</p>\n            </blockquote>\n            <div class=\"mt-4 flex items-center gap-x-6\">\n              <div class=\"text-sm leading-6\">\n                <div class=\"font-semibold text-gray-900\">{}</div>\n                <div class=\"mt-0.5 text-gray-600 font-mono\">Reviews served by: \n                  {pod}\n                  \n                </div>\n              </div>\n            </div>\n          </div>\n        </section>\n",
                    escape(review["text"].as_str().unwrap_or_default()),
                    escape(review["reviewer"].as_str().unwrap_or_default()),
                );
            }
            page.push_str("      </div>\n");
        }
        None => page.push_str("      <p class=\"text-2xl text-red-500\">Error fetching product reviews</p>\n      <p class=\"text-lg text-gray-600\">Sorry, product reviews are currently unavailable for this book.</p>\n"),
    }
    page.push_str("    </div>\n  </div>\n</div>\n");
    page
}

/// The landing page (`/`, `/index.html`).
pub fn index_page() -> String {
    "<meta charset=\"utf-8\">\n<title>Simple Bookstore App</title>\n<div class=\"container mx-auto px-4\">\n  <h3 class=\"text-3xl\">Hello! This is a simple bookstore application consisting of three services as shown below</h3>\n  <p><a href=\"productpage?u=normal\">Normal user</a></p>\n  <p><a href=\"productpage?u=test\">Test user</a></p>\n</div>\n".to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The reviews pod a page names, read from its markup (meshshift's extractor is checked
    /// against these pages in the integration tests).
    pub(crate) fn reviews_pod(page: &str) -> Option<String> {
        let rest = page.split_once("Reviews served by: ")?.1;
        let name = rest.split_whitespace().next()?;
        Some(name.to_string()).filter(|n| !n.starts_with('<'))
    }

    fn title(page: &str) -> Option<&str> {
        Some(page.split_once("<title>")?.1.split_once("</title>")?.0)
    }

    #[test]
    fn the_page_satisfies_the_bookinfo_extractor() {
        let reviews = reviews_json(0, "reviews-v2-5c7d8f9b6-x2kq9", &Ratings::Stars("black"));
        let page = product_page(Some(&details_json(0)), Some(&reviews));
        assert_eq!(title(&page), Some("Simple Bookstore App"));
        assert_eq!(
            reviews_pod(&page).as_deref(),
            Some("reviews-v2-5c7d8f9b6-x2kq9")
        );
        assert_eq!(
            page.matches("Reviews served by: \n                  reviews-v2-5c7d8f9b6-x2kq9\n")
                .count(),
            2
        );
        assert!(
            page.contains("text-black-500")
                && page.contains("Book Details")
                && page.contains("BookInfo Sample")
        );
        let failed = product_page(None, None);
        assert!(
            failed.contains("Error fetching product reviews")
                && failed.contains("Error fetching product details")
        );
        assert_eq!(reviews_pod(&failed), None);
        let unrated = product_page(
            None,
            Some(&reviews_json(0, "reviews-v2-x", &Ratings::Unavailable)),
        );
        assert!(unrated.contains("Ratings service is currently unavailable"));
        assert!(products_json().starts_with(
            "[{\"id\": 0, \"title\": \"The Comedy of Errors\", \"descriptionHtml\": "
        ));
    }
}
