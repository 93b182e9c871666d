"""Duplicates (content hash, MinHash-LSH) and stories (same event, other words)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.replay_pages import fixture_articles
from veille.pipeline.dedup import (
    BANDS,
    CANDIDATE_THRESHOLD,
    NUM_PERM,
    ROWS,
    DuplicateIndex,
    band_keys,
    best_copy,
    containment,
    content_hash,
    jaccard,
    minhash,
    signature_bytes,
    signature_from_bytes,
)
from veille.pipeline.stories import Placed, StoryIndex, article_features, assign_stories
from veille.pipeline.types import Article

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "outlets"
T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)

# One event — a Belgian fugitive arrested in Marrakech — told by several outlets in
# their own words, and unrelated stories of the same days with the same actors.
LONG = """La Direction générale de la Sûreté nationale a annoncé mardi l'interpellation à Marrakech d'un ressortissant belge de 41 ans, visé par une notice rouge d'Interpol émise à la demande des autorités judiciaires de Bruxelles pour son appartenance présumée à un réseau de trafic international de cocaïne.

Selon le communiqué de la DGSN, l'homme a été localisé dans une villa louée du quartier de la Palmeraie, où il résidait depuis plusieurs mois sous une fausse identité. Les enquêteurs de la police judiciaire, agissant sur la base d'informations fournies par la Direction générale de la surveillance du territoire, ont procédé à son arrestation sans incident.

La perquisition a permis de saisir deux passeports falsifiés, des téléphones cryptés et une importante somme d'argent en euros et en dirhams. Le suspect a été placé en garde à vue sous la supervision du parquet compétent, en attendant l'examen de la procédure d'extradition engagée par la Belgique.

Le bureau central national d'Interpol à Rabat a informé son homologue belge de l'arrestation. Cette opération s'inscrit, selon la même source, dans le cadre de la coopération policière entre le Maroc et les pays européens en matière de lutte contre la criminalité transnationale organisée.

Ces derniers mois, plusieurs fugitifs recherchés par des pays européens ont été arrêtés au Maroc, notamment à Tanger, Casablanca et Agadir, avant d'être remis aux autorités de leur pays."""

UPDATE_PARAGRAPH = """Mise à jour : le parquet général près la cour d'appel de Marrakech a ordonné mercredi le placement du suspect en détention en vue de son extradition, a-t-on appris de source judiciaire."""

SHORT = """La police de Casablanca a interpellé lundi soir deux individus soupçonnés de vols à l'arraché commis dans le quartier Maârif. Les suspects, âgés de 22 et 25 ans, ont été arrêtés en flagrant délit grâce aux caméras de surveillance installées dans le centre-ville. Une moto utilisée lors des agressions et plusieurs téléphones portables ont été saisis. Les deux hommes ont été placés en garde à vue à la disposition de l'enquête menée sous la supervision du parquet."""

SHORT_UPDATE = """Selon une source sécuritaire, l'un des deux suspects faisait déjà l'objet de deux avis de recherche pour des faits similaires commis à Rabat et à Salé au cours de l'année passée. La DGSN appelle les victimes à se présenter au commissariat."""

SAME_EVENT_OTHER_OUTLET_FR = """Un Belge recherché par la justice de son pays pour trafic de drogue a été arrêté à Marrakech, a indiqué mardi la DGSN. Âgé de 41 ans, il faisait l'objet d'une notice rouge publiée par Interpol.

L'interpellation a eu lieu dans la Palmeraie, où le fugitif vivait avec de faux papiers. C'est un renseignement de la DGST qui a permis de remonter jusqu'à lui. Lors de la fouille, les policiers ont découvert des documents d'identité contrefaits ainsi que des appareils de communication chiffrés.

Bruxelles a demandé son extradition. En attendant, le ressortissant belge reste à la disposition de la justice marocaine. La Belgique le soupçonne d'avoir joué un rôle clé dans l'importation de plusieurs tonnes de cocaïne par le port d'Anvers."""

SAME_EVENT_EN = """Moroccan police have arrested a 41-year-old Belgian national in Marrakech who was wanted by Belgium under an Interpol red notice for his alleged role in an international cocaine trafficking ring, the General Directorate for National Security (DGSN) said on Tuesday.

The suspect had been living in a rented villa in the Palmeraie area under a false identity. He was located thanks to information provided by the DGST, Morocco's domestic intelligence agency, according to the statement.

Police seized forged passports, encrypted phones and cash during the search. The Interpol National Central Bureau in Rabat notified Belgian authorities, who have requested his extradition to Brussels."""

SAME_EVENT_AR = """تمكنت عناصر الشرطة القضائية بمراكش، بتنسيق مع المديرية العامة لمراقبة التراب الوطني، من توقيف مواطن بلجيكي يبلغ من العمر 41 سنة، يشكل موضوع نشرة حمراء صادرة عن الأنتربول بطلب من السلطات القضائية البلجيكية، للاشتباه في تورطه في الاتجار الدولي في الكوكايين.

وأفاد بلاغ للمديرية العامة للأمن الوطني أن المشتبه فيه كان يقيم بفيلا بمنطقة النخيل بهوية مزورة، وقد أسفرت عملية التفتيش عن حجز جوازي سفر مزورين وهواتف مشفرة ومبالغ مالية.

وقام المكتب المركزي الوطني للأنتربول بالرباط بإشعار السلطات البلجيكية بعملية التوقيف، في انتظار مباشرة إجراءات تسليمه إلى بلجيكا."""

# unrelated stories of the same days, same actors and vocabulary
UNRELATED = {
    "guardia": ("Hammouchi reçoit la directrice de la Guardia Civil espagnole",
        """Abdellatif Hammouchi, directeur général de la DGSN et de la DGST, a reçu à Rabat la directrice générale de la Guardia Civil, Mercedes González. Les entretiens ont porté sur la lutte contre la migration irrégulière dans le détroit de Gibraltar, le trafic de haschich par vedettes rapides et la préparation sécuritaire de la Coupe du monde 2030, coorganisée par le Maroc, l'Espagne et le Portugal. Les deux parties ont convenu de multiplier les patrouilles conjointes et les échanges d'officiers de liaison à Algésiras et à Tanger."""),
    "recrutement": ("La DGSN ouvre un concours de recrutement de 4.000 policiers",
        """La Direction générale de la Sûreté nationale a lancé un concours pour recruter 4.000 gardiens de la paix, inspecteurs et officiers de police. Les inscriptions se font sur le portail de la DGSN jusqu'au 30 avril. Les candidats retenus suivront une formation à l'Institut royal de police de Kénitra. La direction générale met en garde contre les intermédiaires qui promettent une admission contre de l'argent."""),
    "saisie": ("Casablanca : saisie de 2 tonnes de chira au port",
        """Les services de la police judiciaire de Casablanca, en coordination avec la douane, ont saisi près de deux tonnes de chira dissimulées dans un camion frigorifique au port de Casablanca. Le chauffeur, un Marocain de 37 ans, a été interpellé. Selon la DGSN, la marchandise devait être acheminée vers l'Espagne. L'enquête se poursuit pour identifier les autres membres du réseau de trafic de drogue."""),
    "attentat": ("La DGST démantèle une cellule terroriste à Tétouan",
        """Le Bureau central d'investigations judiciaires a démantelé une cellule terroriste de quatre membres liés à l'État islamique, active à Tétouan et à Fnideq, sur la base de renseignements précis de la DGST. Les suspects, âgés de 19 à 33 ans, projetaient des attentats contre des sites sensibles. Des produits chimiques et du matériel électronique ont été saisis lors des perquisitions, selon le communiqué du BCIJ."""),
}

EVENT_TITLE = "Marrakech : arrestation d'un Belge visé par une notice rouge d'Interpol"
SAME_EVENT = {
    "fr": ("Un fugitif belge arrêté à Marrakech", SAME_EVENT_OTHER_OUTLET_FR, "fr"),
    "en": ("Moroccan police arrest Belgian fugitive wanted by Interpol in Marrakech", SAME_EVENT_EN, "en"),
    "ar": ("توقيف مواطن بلجيكي مبحوث عنه دوليا بمراكش", SAME_EVENT_AR, "ar"),
}


# --------------------------------------------------------------------------- exact copies


def test_content_hash_ignores_case_accents_spacing_and_punctuation() -> None:
    a = "La Sûreté nationale, à Rabat.\n\nDeuxième paragraphe !"
    b = "la surete   nationale a rabat deuxieme PARAGRAPHE"
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(a + " Un mot de plus.")
    assert len(content_hash(a)) == 64


# --------------------------------------------------------------------------- signatures


def test_signature_round_trips_through_bytes() -> None:
    sig = minhash(LONG)
    data = signature_bytes(sig)
    assert isinstance(data, bytes) and len(data) == 12 + 8 * 128
    back = signature_from_bytes(data)
    assert back == sig and back.size == sig.size
    assert jaccard(back, sig) == 1.0


@pytest.mark.parametrize("bad", [b"", b"nope" * 3, signature_bytes(minhash("a b c"))[:-8]])
def test_signature_from_foreign_bytes_is_an_error(bad: bytes) -> None:
    with pytest.raises(ValueError):
        signature_from_bytes(bad)


def test_signatures_are_stable_across_processes() -> None:
    # stored signatures must stay comparable: same text, same hash values, every run
    sig = minhash("le maroc et la france renforcent leur coopération sécuritaire")
    assert int(sig.hashvalues[0]) == int(minhash("LE MAROC et la France renforcent leur coopération sécuritaire").hashvalues[0])
    assert sig.size == 5


# --------------------------------------------------------------------------- near-duplicates


@pytest.fixture()
def index() -> DuplicateIndex:
    idx = DuplicateIndex()
    idx.add("long", minhash(LONG))
    idx.add("short", minhash(SHORT))
    for key, (_, text) in UNRELATED.items():
        idx.add(key, minhash(text))
    return idx


def test_exact_copy_is_found(index: DuplicateIndex) -> None:
    assert index.find(minhash(LONG)) == "long"
    assert index.find(minhash(SHORT.upper())) == "short"


def test_update_with_a_paragraph_added_is_found(index: DuplicateIndex) -> None:
    updated = minhash(LONG + "\n\n" + UPDATE_PARAGRAPH)
    assert jaccard(updated, minhash(LONG)) >= 0.8
    assert index.find(updated) == "long"


def test_update_of_a_short_article_is_found_by_containment(index: DuplicateIndex) -> None:
    first, second = minhash(SHORT), minhash(SHORT + "\n" + SHORT_UPDATE)
    assert jaccard(first, second) < 0.8  # the Jaccard rule alone would miss it
    assert containment(first, second) >= 0.9
    assert index.find(second) == "short"
    strict = DuplicateIndex(containment=None)
    strict.add("short", first)
    assert strict.find(second) is None


def test_same_event_in_other_words_is_not_a_duplicate(index: DuplicateIndex) -> None:
    for _, text, _ in SAME_EVENT.values():
        assert index.find(minhash(text)) is None
    # sharing one paragraph does not make a copy; containing all of an article does
    guardia, saisie = UNRELATED["guardia"][1], UNRELATED["saisie"][1]
    assert index.find(minhash(guardia[: len(guardia) // 2] + " " + saisie[len(saisie) // 2 :])) is None
    assert index.find(minhash(UNRELATED["guardia"][1] + " " + UNRELATED["saisie"][1])) == "guardia"


def test_best_match_wins() -> None:
    idx = DuplicateIndex()
    idx.add("v1", minhash(LONG))
    idx.add("v2", minhash(LONG + "\n\n" + UPDATE_PARAGRAPH))
    assert idx.find(minhash(LONG + "\n\n" + UPDATE_PARAGRAPH)) == "v2"
    assert idx.find(minhash(LONG)) == "v1"
    assert [k for k, _ in idx.candidates(minhash(LONG))] == ["v1", "v2"]


def test_index_rebuilt_from_stored_bytes_answers_the_same(index: DuplicateIndex) -> None:
    stored = {"long": signature_bytes(minhash(LONG)), "short": signature_bytes(minhash(SHORT))}
    rebuilt = DuplicateIndex()
    rebuilt.add_many(stored.items())
    assert len(rebuilt) == 2 and "long" in rebuilt
    query = signature_bytes(minhash(LONG + "\n\n" + UPDATE_PARAGRAPH))
    assert rebuilt.find(query) == index.find(query) == "long"


def test_re_adding_a_key_replaces_its_signature() -> None:
    idx = DuplicateIndex()
    idx.add("a", minhash(LONG))
    idx.add("a", minhash(SHORT))
    assert len(idx) == 1
    assert idx.find(minhash(LONG)) is None
    assert idx.find(minhash(SHORT)) == "a"


def test_empty_text_matches_nothing() -> None:
    idx = DuplicateIndex()
    idx.add("empty", minhash(""))
    assert minhash("").size == 0
    assert idx.find(minhash("")) is None


def _random_text(rng: random.Random, vocab: list[str], n: int = 150) -> str:
    return " ".join(rng.choice(vocab) for _ in range(n))


def test_duplicate_index_is_not_all_pairs_on_5000_articles() -> None:
    rng = random.Random(7)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(20_000)]
    texts = [_random_text(rng, vocab) for _ in range(5000)]
    copies = {}  # article i is an updated copy of article j
    for i in range(100, 5000, 100):
        j = rng.randrange(i)
        texts[i] = texts[j] + " " + _random_text(rng, vocab, 15)
        copies[i] = j
    idx = DuplicateIndex()
    found = {}
    for i, text in enumerate(texts):
        sig = minhash(text)
        hit = idx.find(sig)
        if hit is not None:
            found[i] = int(hit)
        idx.add(str(i), sig)
    assert {i: found.get(i) for i in copies} == copies
    assert set(found) == set(copies)  # no false positive
    n = len(texts)
    assert idx.comparisons < 2 * n < n * (n - 1) // 2 // 100


def test_stored_bands_are_the_in_memory_index_bands() -> None:
    """The bands kept in the database (storage.duplicates) are those MinHashLSH picks for
    the index's candidate threshold: the same texts are candidates either way."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=CANDIDATE_THRESHOLD, num_perm=NUM_PERM)
    assert (lsh.b, lsh.r) == (BANDS, ROWS)
    assert band_keys(minhash("")) == []  # an empty text shares no band with anything
    a, b = minhash(LONG), minhash(LONG + "\n\n" + UPDATE_PARAGRAPH)
    assert len(set(band_keys(a))) == BANDS and set(band_keys(a)) & set(band_keys(b))
    assert not set(band_keys(a)) & set(band_keys(minhash(UNRELATED["guardia"][1])))



def test_band_keys_are_stable_and_each_call_gets_its_own_list() -> None:
    """The keys are a pure function of the hash values (stored keys must stay comparable):
    a signature rebuilt from its bytes has them, and a caller may change what it got."""
    import hashlib

    sig = minhash(LONG)
    keys = band_keys(sig)
    raw = sig.hashvalues.astype("<u8").tobytes()
    assert keys == [int.from_bytes(hashlib.blake2b(bytes((b,)) + raw[b * 8 * ROWS:(b + 1) * 8 * ROWS],
                                                   digest_size=8).digest(), "little", signed=True)
                    for b in range(BANDS)]
    keys.clear()
    assert band_keys(signature_from_bytes(signature_bytes(sig))) == band_keys(sig) != []

def test_best_copy_among_band_candidates_answers_as_the_index(index: DuplicateIndex) -> None:
    stored = {"long": minhash(LONG), "short": minhash(SHORT)}
    stored.update((key, minhash(text)) for key, (_, text) in UNRELATED.items())
    ids = {key: i for i, key in enumerate(sorted(stored))}
    queries = [LONG, SHORT.upper(), LONG + "\n\n" + UPDATE_PARAGRAPH, SHORT + "\n" + SHORT_UPDATE,
               UNRELATED["guardia"][1] + " " + UNRELATED["saisie"][1], ""]
    queries += [text for _, text, _ in SAME_EVENT.values()]
    for text in queries:
        sig = minhash(text)
        keys = set(band_keys(sig))
        candidates = [(ids[k], signature_bytes(s)) for k, s in stored.items() if keys & set(band_keys(s))]
        found = best_copy(sig, candidates)
        expected = index.find(sig)
        assert found == (None if expected is None else ids[expected]), text[:60]


# --------------------------------------------------------------------------- stories: features


def test_features_are_a_json_list_of_strings_and_deterministic() -> None:
    feats = article_features(EVENT_TITLE, LONG, "fr")
    assert isinstance(feats, list) and all(isinstance(f, str) for f in feats)
    assert json.loads(json.dumps(feats)) == feats == article_features(EVENT_TITLE, LONG, "fr")
    assert len(feats) == len(set(feats)) <= 90


def test_features_meet_across_languages() -> None:
    fr = set(article_features("Hammouchi à Tanger", "Le 28 juin, Abdellatif Hammouchi était à Tanger avec la DGSI pour les Jeux olympiques. Une notice rouge.", "fr"))
    en = set(article_features("Hammouchi in Tangier", "On June 28, Abdellatif Hammouchi was in Tangier with the DGSI for the Olympic Games. A red notice.", "en"))
    ar = set(article_features("حموشي في طنجة", "يوم 28 يونيو، كان عبد اللطيف حموشي بطنجة مع المديرية العامة للأمن الداخلي من أجل الألعاب الأولمبية. نشرة حمراء.", "ar"))
    shared = {"x:hammouchi", "x:tanger", "x:dgsi", "c:olympics", "c:red-notice", "d:06-28"}
    assert shared <= fr and shared <= en and shared <= ar


def test_date_ranges_give_every_day() -> None:
    for text in ("du 26 au 28 juin", "ما بين 26 و28 يونيو", "June 26-28"):
        feats = set(article_features("", text, None))
        assert {"d:06-26", "d:06-28"} <= feats, text


def test_capitalised_common_words_are_not_names() -> None:
    feats = article_features("", "Selon Céline Berthon, la Police a tout vu. La police était là. Berthon confirme.", "fr")
    assert "x:berthon" in feats and "e:celine" in feats
    assert "e:police" not in feats


# --------------------------------------------------------------------------- stories: index


def _background(index: StoryIndex) -> None:
    for i, (key, (title, text)) in enumerate(UNRELATED.items()):
        index.add(key, article_features(title, text, "fr"), T0 + timedelta(hours=5 * i))


@pytest.mark.parametrize("lang", ["fr", "en", "ar"])
def test_same_event_from_other_outlets_joins_the_story(lang: str) -> None:
    idx = StoryIndex()
    _background(idx)
    idx.add("event", article_features(EVENT_TITLE, LONG, "fr"), T0)
    title, text, language = SAME_EVENT[lang]
    assert idx.match(article_features(title, text, language), T0 + timedelta(hours=8)) == "event"


def test_a_story_grows_article_by_article() -> None:
    idx = StoryIndex()
    _background(idx)
    idx.add("event", article_features(*SAME_EVENT["ar"]), T0)  # the first report is Arabic
    for lang in ("en", "fr"):
        feats = article_features(*SAME_EVENT[lang])
        assert idx.match(feats, T0 + timedelta(days=1)) == "event"
        idx.add("event", feats, T0 + timedelta(days=1))
    assert len(idx) == 1 + len(UNRELATED)


def test_unrelated_stories_of_the_same_days_never_join() -> None:
    idx = StoryIndex()
    idx.add("event", article_features(EVENT_TITLE, LONG, "fr"), T0)
    for lang in SAME_EVENT:
        idx.add("event", article_features(*SAME_EVENT[lang]), T0)
    for key, (title, text) in UNRELATED.items():
        feats = article_features(title, text, "fr")
        assert idx.match(feats, T0 + timedelta(hours=3)) is None, key
        idx.add(key, feats, T0 + timedelta(hours=3))
    # and the event's reports do not join the unrelated stories either
    for title, text, language in SAME_EVENT.values():
        assert idx.match(article_features(title, text, language), T0) == "event"


def test_window_is_respected() -> None:
    idx = StoryIndex(window_days=4)
    idx.add("event", article_features(EVENT_TITLE, LONG, "fr"), T0)
    feats = article_features(*SAME_EVENT["fr"])
    assert idx.match(feats, T0 + timedelta(days=3, hours=23)) == "event"
    assert idx.match(feats, T0 - timedelta(days=3)) == "event"
    assert idx.match(feats, T0 + timedelta(days=4, hours=1)) is None
    assert idx.match(feats, T0 - timedelta(days=5)) is None


def test_undated_articles_and_stories_never_match() -> None:
    idx = StoryIndex()
    idx.add("undated", article_features(EVENT_TITLE, LONG, "fr"), None)
    feats = article_features(*SAME_EVENT["fr"])
    assert idx.match(feats, T0) is None
    idx.add("event", article_features(EVENT_TITLE, LONG, "fr"), T0)
    assert idx.match(feats, None) is None
    assert idx.match(feats, T0) == "event"


def test_candidates_explain_the_decision() -> None:
    idx = StoryIndex()
    _background(idx)
    idx.add("event", article_features(EVENT_TITLE, LONG, "fr"), T0)
    best = idx.candidates(article_features(*SAME_EVENT["ar"]), T0)[0]
    assert best.story == "event" and best.accepted and best.cross_language
    assert {"x:interpol", "x:marrakech", "c:red-notice"} <= set(best.shared)


def test_story_index_is_not_all_pairs_on_5000_articles() -> None:
    rng = random.Random(11)
    common = ["x:morocco", "x:dgsn", "x:rabat", "c:drugs", "x:france", "k:lat:police", "k:lat:securi"]
    articles: list[tuple[int, list[str], datetime]] = []  # (event, features, published)
    event = 0
    while len(articles) < 5000:
        day = T0 + timedelta(days=rng.uniform(0, 365))
        specific = [f"e:person{event}", f"e:other{event}", f"x:place{event}", f"x:site{event}",
                    f"n:{1000 + event}", f"d:{event % 12 + 1:02d}-{event % 28 + 1:02d}"]
        for _ in range(rng.randint(1, 4)):
            feats = specific + rng.sample(common, 4) + [f"k:lat:w{rng.randrange(3000)}" for _ in range(15)]
            articles.append((event, feats, day + timedelta(hours=rng.uniform(0, 48))))
        event += 1
    idx = StoryIndex()
    story_of: dict[int, str] = {}
    wrong = 0
    for i, (ev, feats, published) in enumerate(articles):
        key = idx.match(feats, published)
        if key is None:
            key = f"s{i}"
        if ev in story_of and story_of[ev] != key or ev not in story_of and key != f"s{i}":
            wrong += 1
        story_of.setdefault(ev, key)
        idx.add(key, feats, published)
    n = len(articles)
    assert wrong == 0
    assert idx.comparisons < n * (n - 1) // 2 // 100, idx.comparisons


# --------------------------------------------------------------------------- replay fixtures


def _fixture_articles() -> list[tuple[str, dict, Article]]:
    return [(key, item, art) for key, item, art in fixture_articles() if isinstance(art, Article)]


def _when(art: Article) -> datetime:
    if art.published is None:
        return datetime.max.replace(tzinfo=UTC)
    return art.published if art.published.tzinfo else art.published.replace(tzinfo=UTC)


def _cluster(
    arts: list[tuple[str, dict, Article]],
) -> tuple[set[frozenset[str]], set[frozenset[str]]]:
    """Stories and duplicate pairs, the way pipeline/process.py and pipeline/settle.py
    build them (no database): copies found as they arrive, then one story pass. An
    outlet's own update is one article whose date is the earliest version's and whose
    text is the newest (process.Processor._fold_update), whatever came first."""
    dup_index = DuplicateIndex()
    by_hash: dict[str, str] = {}
    copy_of: dict[str, str] = {}
    kept: dict[str, tuple[Article, datetime]] = {}  # original -> (newest version, first date)
    for key, _, art in arts:
        sig = minhash(art.text)
        original = by_hash.get(content_hash(art.text)) or dup_index.find(sig)
        if original is not None:
            copy_of[key] = original
            if key.split(":")[0] == original.split(":")[0]:  # the same outlet: an update
                text, first = kept[original]
                newest = art if _when(art) > _when(text) else text
                kept[original] = (newest, min(first, _when(art)))
            continue
        by_hash[content_hash(art.text)] = key
        dup_index.add(key, sig)
        assert art.published is not None, key
        kept[key] = (art, _when(art))
    story_of = assign_stories(
        Placed(key, article_features(a.title, a.text, a.language), first) for key, (a, first) in kept.items()
    )
    story_of.update({key: story_of[original] for key, original in copy_of.items()})
    groups: dict[str, set[str]] = {}
    for key, story in story_of.items():
        groups.setdefault(story, set()).add(key)
    duplicates = {frozenset(pair) for pair in copy_of.items()}
    return {frozenset(g) for g in groups.values()}, duplicates


def test_replay_fixtures_cluster_without_false_joins() -> None:
    arts = sorted(_fixture_articles(), key=lambda t: (_when(t[2]), t[0]))
    assert len(arts) >= 25, "the replay fixtures (tests/fixtures/outlets) are missing"
    stories, duplicates = _cluster(arts)

    expected_dups = {
        frozenset((k, item["duplicate_of"])) for k, item, _ in arts if item.get("duplicate_of")
    }
    assert duplicates == expected_dups

    event = {k: item.get("event") or k for k, item, _ in arts}
    lang = {k: art.language for k, _, art in arts}
    for group in stories:  # unrelated articles never share a story
        assert len({event[k] for k in group}) == 1, sorted(group)
    for ev in set(event.values()):  # reports of one event in one language always meet
        for language in ("fr", "ar", "en"):
            members = {k for k in event if event[k] == ev and lang[k] == language}
            assert not members or any(members <= g for g in stories), (ev, language)
    joined = [g for g in stories if len({lang[k] for k in g}) > 1]
    assert any({"ar", "fr"} <= {lang[k] for k in g} for g in joined)  # across scripts too
    assert any({"ar", "en"} <= {lang[k] for k in g} for g in joined)
    # the order articles arrive in does not change the stories
    for seed in range(20):
        shuffled = list(arts)
        random.Random(seed).shuffle(shuffled)
        assert _cluster(shuffled)[0] == stories
