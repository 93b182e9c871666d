"""HTML, feeds and sitemaps of the synthetic corpus, in three CMS styles like the replay fixtures.

- ``spip``: bladi.net-like (SPIP): cookie notice, menu, "Dernière minute" ticker, chapô,
  inline "À lire :" links in the text, "Ces articles devraient vous intéresser", forum form.
- ``wp``: hespress/moroccoworldnews-like (WordPress): mega menu, JSON-LD NewsArticle,
  inline "Read also" box, share bar, related posts, comments, newsletter.
- ``arc``: le360-like (Arc XP): one div per paragraph, ad slots between paragraphs, "most
  read" list, consent dialog, big inline state script.

Pure string building (no template engine): 2,000 pages render in about a second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from xml.sax.saxutils import escape as xml_escape


@dataclass(frozen=True)
class Brand:
    """What is the same on every page of one outlet: its boilerplate."""

    site: str
    lang: str
    style: str  # spip | wp | arc
    cookie: str
    newsletter: str
    related_head: str
    read_also: str
    menu: tuple[str, ...]
    footer: str


@dataclass(frozen=True)
class Link:
    url: str
    title: str
    teaser: str


def _menu(brand: Brand, base: str) -> str:
    """A mega menu: every section with its sub-sections (real menus carry 50-150 links)."""
    items = []
    for m in brand.menu:
        slug = _slug(m)
        subs = "".join(f'<li class="sub-item"><a href="{base}/{slug}/{k}/">{escape(m)} {k}</a></li>'
                       for k in _SUBSECTIONS)
        items.append(f'<li class="menu-item has-children"><a href="{base}/{slug}/">{escape(m)}</a>'
                     f'<ul class="sub-menu">{subs}</ul></li>')
    return f'<nav class="main-nav" role="navigation"><ul class="menu">{"".join(items)}</ul></nav>'


_SUBSECTIONS = ("actualite", "analyses", "portraits", "regions", "dossiers", "videos")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "rubrique"


def _links(links: list[Link], cls: str, tag: str = "h3") -> str:
    return "".join(f'<div class="{cls}"><{tag} class="title"><a href="{escape(lk.url)}">{escape(lk.title)}'
                   f'</a></{tag}><p class="excerpt">{escape(lk.teaser)}</p></div>' for lk in links)


def _ticker(links: list[Link]) -> str:
    return "".join(f'<li><a href="{escape(lk.url)}">{escape(lk.title)}</a></li>' for lk in links)


def _footer(brand: Brand, base: str) -> str:
    names = ("Qui sommes-nous", "Contact", "Mentions légales", "Publicité", "Charte", "Plan du site") \
        if brand.lang == "fr" else ("من نحن", "اتصل بنا", "الشروط", "إعلان", "ميثاق", "خريطة الموقع") \
        if brand.lang == "ar" else ("About us", "Contact", "Legal notice", "Advertise", "Charter", "Sitemap")
    cols = "".join(
        f'<div class="footer-col"><h4>{escape(m)}</h4><ul>'
        + "".join(f'<li><a href="{base}/{_slug(m)}/{k}/">{escape(k)}</a></li>' for k in _SUBSECTIONS)
        + "</ul></div>" for m in brand.menu[:5])
    items = "".join(f'<li><a href="{base}/page/{i}.html">{escape(n)}</a></li>' for i, n in enumerate(names))
    return (f'<footer class="site-footer"><div class="footer-cols">{cols}</div><ul class="footer-links">{items}</ul>'
            f'<div class="social"><a href="https://facebook.com/x">Facebook</a><a href="https://x.com/x">X</a>'
            f'<a href="https://instagram.com/x">Instagram</a><a href="https://youtube.com/x">YouTube</a></div>'
            f'<p class="copyright">{escape(brand.footer)}</p></footer>')


def _sidebar(brand: Brand, ticker: list[Link], related: list[Link]) -> str:
    """Most read, a video block and ad slots: links and teasers that are not the article."""
    most = "".join(f'<li><span class="rank">{i}</span><a href="{escape(lk.url)}">{escape(lk.title)}</a></li>'
                   for i, lk in enumerate(ticker + related, 1))
    ads = "".join(f'<div class="ad-slot" id="div-gpt-ad-side-{i}" data-sizes="300x250,300x600"></div>'
                  for i in range(3))
    return f'<aside class="sidebar"><section class="most-read-widget"><ol>{most}</ol></section>{ads}</aside>'


_GTM = ("(function(w,d,s,l,i){w[l]=w[l]||[];w[l].push({'gtm.start':new Date().getTime(),event:'gtm.js'});"
        "var f=d.getElementsByTagName(s)[0],j=d.createElement(s),dl=l!='dataLayer'?'&l='+l:'';j.async=true;"
        "j.src='https://www.googletagmanager.com/gtm.js?id='+i+dl;f.parentNode.insertBefore(j,f);})"
        "(window,document,'script','dataLayer','GTM-XXXX');")


_STATE_JS = ("window.__APP_STATE__=" + json.dumps({
    "config": {"ads": {"slots": [f"div-gpt-ad-{i}" for i in range(12)], "lazy": True},
               "analytics": {"id": "G-XXXXXXX", "events": ["scroll", "read", "share"] * 8}},
    "features": {f"flag_{i}": i % 3 == 0 for i in range(200)},
    "i18n": {f"label_{i}": f"Libellé d'interface numéro {i}" for i in range(120)},
}, separators=(",", ":")) + ";")


def article_html(brand: Brand, base: str, url: str, title: str, paragraphs: list[str],
                 published: str, author: str, ticker: list[Link], related: list[Link],
                 inline: Link | None) -> str:
    """One article page. `published` is an ISO datetime with offset."""
    head = _head(brand, url, title, paragraphs[0] if paragraphs else "", published, author)
    render = {"spip": _spip, "wp": _wp, "arc": _arc}[brand.style]
    body = render(brand, base, url, title, paragraphs, published, author, ticker, related, inline)
    dir_ = "rtl" if brand.lang == "ar" else "ltr"
    return (f'<!DOCTYPE html>\n<html lang="{brand.lang}" dir="{dir_}">\n{head}\n<body class="single-post">\n'
            f'<div id="cookie-notice" class="cookie-banner" role="dialog"><p>{escape(brand.cookie)}</p>'
            f'<button class="accept">OK</button></div>\n{body}\n{_sidebar(brand, ticker, related)}\n'
            f'{_footer(brand, base)}\n<script>{_GTM}</script>\n'
            f'<script>{_STATE_JS}</script>\n</body>\n</html>\n')


def _head(brand: Brand, url: str, title: str, lead: str, published: str, author: str) -> str:
    desc = escape(lead[:200])
    meta = (f'<meta charset="utf-8"/><title>{escape(title)} - {escape(brand.site)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"/>'
            f'<meta name="description" content="{desc}"/><link rel="canonical" href="{escape(url)}"/>'
            f'<meta property="og:site_name" content="{escape(brand.site)}"/><meta property="og:type" content="article"/>'
            f'<meta property="og:title" content="{escape(title)}"/><meta property="og:url" content="{escape(url)}"/>'
            f'<meta property="og:description" content="{desc}"/>')
    if brand.style == "spip":
        meta += f'<meta property="article:published_time" content="{published}"/>'
    else:
        ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": title,
              "datePublished": published, "dateModified": published, "inLanguage": brand.lang,
              "author": [{"@type": "Person", "name": author}],
              "publisher": {"@type": "Organization", "name": brand.site}, "mainEntityOfPage": url}
        meta += f'<script type="application/ld+json">{json.dumps(ld, ensure_ascii=False)}</script>'
    css = "".join(f".c{i}{{margin:{i}px;padding:{i % 7}px}}" for i in range(80))
    return f"<head>{meta}<style>{css}</style></head>"


def _spip(brand: Brand, base: str, url: str, title: str, paragraphs: list[str], published: str,
          author: str, ticker: list[Link], related: list[Link], inline: Link | None) -> str:
    date_line = published[:10]
    paras = [f"<p>{escape(p)}</p>" for p in paragraphs[1:]]
    if inline is not None and len(paras) > 2:
        paras.insert(2, f'<p class="alire"><strong>{escape(brand.read_also)}</strong> '
                        f'<a href="{escape(inline.url)}" class="spip_in">{escape(inline.title)}</a></p>')
    lead = escape(paragraphs[0]) if paragraphs else ""
    return (f'<div class="page"><header class="header"><a class="logo" href="{base}/">{escape(brand.site)}</a>'
            f'{_menu(brand, base)}<div class="breaking"><strong>Dernière minute</strong><ul>{_ticker(ticker)}</ul></div></header>'
            f'<main class="main"><article class="article hentry"><h1 class="titre entry-title">{escape(title)}</h1>'
            f'<p class="info-publi">{date_line} - Ecrit par : <span class="vcard author">{escape(author)}</span></p>'
            f'<div class="chapo"><p>{lead}</p></div><div class="texte entry-content">{"".join(paras)}</div>'
            f'<p class="sujets">Sujets associés : <a href="{base}/mot/maroc.html" rel="tag">Maroc</a></p></article>'
            f'<section class="ces-articles"><h2>{escape(brand.related_head)}</h2>{_links(related, "item")}</section>'
            f'<section class="forum"><h2>Réagir à cet article</h2><form method="post"><textarea name="texte"></textarea>'
            f'<input type="submit" value="Prévisualiser"/></form></section></main>'
            f'<aside class="sidebar"><div class="bloc-newsletter"><h3>Newsletter</h3><p>{escape(brand.newsletter)}</p>'
            f'<form><input type="email" name="email"/></form></div></aside></div>')


def _wp(brand: Brand, base: str, url: str, title: str, paragraphs: list[str], published: str,
        author: str, ticker: list[Link], related: list[Link], inline: Link | None) -> str:
    paras = [f"<p>{escape(p)}</p>" for p in paragraphs]
    if inline is not None and len(paras) > 3:
        paras.insert(3, f'<div class="read-also"><span>{escape(brand.read_also)}</span> '
                        f'<a href="{escape(inline.url)}">{escape(inline.title)}</a></div>')
    share = "".join(f'<a class="share-{n}" href="https://{n}.com/share?u={escape(url)}">{n}</a>'
                    for n in ("facebook", "twitter", "whatsapp", "linkedin", "telegram"))
    return (f'<header id="masthead" class="site-header"><div class="top-bar"><ul class="trending">{_ticker(ticker)}</ul></div>'
            f'<a class="custom-logo-link" href="{base}/">{escape(brand.site)}</a>{_menu(brand, base)}</header>'
            f'<div id="content" class="site-content"><main id="main"><article class="post type-post">'
            f'<header class="entry-header"><h1 class="entry-title">{escape(title)}</h1>'
            f'<div class="entry-meta"><span class="author vcard">{escape(author)}</span> '
            f'<time class="entry-date published" datetime="{published}">{published[:10]}</time></div></header>'
            f'<div class="share-bar">{share}</div><div class="entry-content">{"".join(paras)}</div>'
            f'<div class="tags-links"><a href="{base}/tag/maroc/" rel="tag">Maroc</a></div></article>'
            f'<section class="related-posts"><h2 class="section-title">{escape(brand.related_head)}</h2>{_links(related, "related-post", "h4")}</section>'
            f'<div id="comments" class="comments-area"><h3 id="reply-title">Laisser un commentaire</h3>'
            f'<form id="commentform"><textarea id="comment"></textarea><input type="submit" value="Envoyer"/></form></div></main>'
            f'<aside id="secondary" class="widget-area"><section class="widget widget_newsletter"><p>{escape(brand.newsletter)}</p></section>'
            f'<section class="widget widget_recent_entries"><ul>{_ticker(related)}</ul></section></aside></div>')


def _arc(brand: Brand, base: str, url: str, title: str, paragraphs: list[str], published: str,
         author: str, ticker: list[Link], related: list[Link], inline: Link | None) -> str:
    parts: list[str] = []
    for i, p in enumerate(paragraphs):
        parts.append(f'<div class="c-paragraph article-body-paragraph"><p>{escape(p)}</p></div>')
        if i % 3 == 2:
            parts.append(f'<div class="ad-slot" id="div-gpt-ad-inarticle-{i}"><span class="ad-label">Publicité</span></div>')
    if inline is not None and len(parts) > 4:
        parts.insert(4, f'<div class="interlink"><span>{escape(brand.read_also)}</span><a href="{escape(inline.url)}">{escape(inline.title)}</a></div>')
    return (f'<div id="fusion-app"><header class="nav-wrapper">{_menu(brand, base)}</header>'
            f'<main class="b-article"><div class="article-header"><h1 class="headline">{escape(title)}</h1>'
            f'<div class="byline"><span class="author-name">{escape(author)}</span> '
            f'<time datetime="{published}">{published[:16].replace("T", " ")}</time></div></div>'
            f'<div class="article-body">{"".join(parts)}</div>'
            f'<section class="most-read"><h2>{escape(brand.related_head)}</h2>{_links(related, "story-card")}</section>'
            f'<section class="latest"><ul>{_ticker(ticker)}</ul></section>'
            f'<div class="newsletter-cta"><p>{escape(brand.newsletter)}</p></div></main></div>')


# ---------------------------------------------------------------- discovery documents

def rss(brand: Brand, base: str, feed_url: str, items: list[tuple[str, str, str, str]]) -> str:
    """RSS 2.0; items are (url, title, rfc822 date, description)."""
    body = "".join(f"<item><title>{xml_escape(t)}</title><link>{xml_escape(u)}</link>"
                   f'<guid isPermaLink="true">{xml_escape(u)}</guid><pubDate>{d}</pubDate>'
                   f"<description>{xml_escape(desc)}</description></item>" for u, t, d, desc in items)
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>{xml_escape(brand.site)}</title><link>{base}/</link><language>{brand.lang}</language>"
            f"<description>{xml_escape(brand.site)}</description>{body}</channel></rss>\n")


def urlset(entries: list[tuple[str, str]]) -> str:
    """A sitemap urlset of (url, lastmod ISO)."""
    body = "".join(f"<url><loc>{xml_escape(u)}</loc><lastmod>{m}</lastmod></url>" for u, m in entries)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</urlset>\n')


def sitemap_index(children: list[tuple[str, str]]) -> str:
    body = "".join(f"<sitemap><loc>{xml_escape(u)}</loc><lastmod>{m}</lastmod></sitemap>" for u, m in children)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</sitemapindex>\n')
