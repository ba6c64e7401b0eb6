"""A deterministic fictional encyclopedia with multi-hop questions.

Every article is about an invented person, city or organization, so nothing is
answerable without the corpus. Facts sit at known (section, subsection) places
among plausible filler; each article keeps its true structure tree, and each
question keeps its answers, aliases, supporting places and a Local/Global label.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

SYLLABLES = ["ka", "lor", "ven", "mi", "dra", "tes", "quo", "ral", "bri", "sel", "nor", "thu", "vay", "zen",
             "ora", "pel", "gri", "mun", "ast", "cel", "dov", "fen", "hal", "jor", "kel", "lum", "mar", "nix"]
OCCUPATIONS = ["cartographer", "glassblower", "astronomer", "composer", "shipwright", "botanist", "architect",
               "weaver", "linguist", "engineer", "painter", "clockmaker"]
INDUSTRIES = ["ceramics", "river shipping", "textiles", "optics", "printing", "salt mining", "bell casting",
              "map making", "dye production", "rope making"]
AWARDS = ["Amber Quill", "Silver Lantern", "Harrow Medal", "Tessaly Prize", "Copper Compass", "Veldt Ribbon",
          "Orrin Laurel", "Marrow Star"]
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

FILLER = [
    "Contemporary accounts of {topic} describe a period of slow but steady change.",
    "Several letters from this time are kept in the archives of the {place} society.",
    "Historians of {region} have debated the details of these events for decades.",
    "Local chroniclers noted the influence of {topic} on daily life in {region}.",
    "A number of sketches and notebooks from these years survive in private collections.",
    "The surrounding hills of {region} were known for their mild winters and long harvests.",
    "Later commentators compared this work with the older traditions of {place}.",
    "Records of the period are incomplete, and some dates remain uncertain.",
    "The practice of {topic} spread along the trade roads that crossed {region}.",
    "Visitors from {place} often remarked on the quiet streets and crowded markets.",
    "A small museum in {place} displays objects associated with this era.",
    "Much of the surviving correspondence deals with ordinary matters of trade and travel.",
    "The guilds of {region} set strict rules for apprentices and masters alike.",
    "Scholars note that the terminology of {topic} changed considerably over time.",
    "Festivals held each spring in {place} attracted travellers from distant valleys.",
    "Some early descriptions were later revised in light of newly found documents.",
    # the subject's name runs through the whole article, as in an encyclopedia, so it
    # does not point local (BM25) scores at the one paragraph holding a fact
    "{subject} is mentioned in several guides to {region}.",
    "Writers from {place} have returned to {subject} again and again.",
    "Accounts of {subject} often dwell on {topic}.",
    "Many letters about {subject} were exchanged with correspondents in {place}.",
    "Older maps of {region} show places connected with {subject}.",
]
TOPICS = ["river trade", "glassmaking", "stargazing", "folk music", "canal building", "herb gardens",
          "stone masonry", "the wool trade", "bookbinding", "lantern making"]


@dataclass
class Article:
    entity_id: str
    title: str
    kind: str
    abstract: list[str] = field(default_factory=list)
    sections: list[dict] = field(default_factory=list)  # {title, paragraphs, subsections:[{title, paragraphs}]}

    def section(self, path: tuple[str, ...]) -> list[str]:
        node = next(s for s in self.sections if s["title"] == path[0])
        if len(path) == 2:
            node = next(s for s in node["subsections"] if s["title"] == path[1])
        return node["paragraphs"]

    def tree(self) -> dict:
        return {"title": self.title, "abstract": list(self.abstract),
                "sections": [{"title": s["title"], "paragraphs": list(s["paragraphs"]),
                              "subsections": [dict(title=u["title"], paragraphs=list(u["paragraphs"]))
                                              for u in s["subsections"]]} for s in self.sections]}

    def contents(self) -> str:
        paragraphs = list(self.abstract)
        for section in self.sections:
            paragraphs += section["paragraphs"]
            for subsection in section["subsections"]:
                paragraphs += subsection["paragraphs"]
        return self.title + "\n" + "\n".join(paragraphs)


class NameMaker:
    """Unique pronounceable fictional names."""

    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()

    def word(self, syllables: int) -> str:
        while True:
            name = "".join(self.rng.choice(SYLLABLES) for _ in range(syllables)).capitalize()
            if name not in self.used:
                self.used.add(name)
                return name


def filler_sentence(rng: random.Random, region: str, place: str, subject: str) -> str:
    return rng.choice(FILLER).format(topic=rng.choice(TOPICS), region=region, place=place, subject=subject)


def filler_paragraph(rng: random.Random, region: str, place: str, sentences: int, subject: str) -> str:
    return " ".join(filler_sentence(rng, region, place, subject) for _ in range(sentences))


def with_fact(rng: random.Random, fact: str, region: str, place: str, subject: str) -> str:
    """A paragraph with the fact at a random position among filler sentences."""
    sentences = [filler_sentence(rng, region, place, subject) for _ in range(rng.randint(2, 4))]
    sentences.insert(rng.randint(0, len(sentences)), fact)
    return " ".join(sentences)


def build_entities(rng: random.Random, names: NameMaker, count: int) -> list[dict]:
    """Persons, cities and organizations linked to each other (for bridge questions)."""
    kinds = ["person", "city", "organization"]
    entities = []
    for index in range(count):
        kind = kinds[index % 3]
        if kind == "person":
            title = f"{names.word(2)} {names.word(3)}"
        elif kind == "city":
            title = names.word(3)
        else:
            title = f"{names.word(2)} {rng.choice(['Company', 'Guild', 'Works', 'Society'])}"
        entities.append({"id": f"syn-{index:04d}", "title": title, "kind": kind})
    cities = [e for e in entities if e["kind"] == "city"]
    persons = [e for e in entities if e["kind"] == "person"]
    organizations = [e for e in entities if e["kind"] == "organization"]
    for entity in entities:
        entity["region"] = f"the {names.word(2)} Valley"
        entity["town"] = names.word(2)  # the filler's place: never the answer to a question
        entity["awards"] = rng.sample(AWARDS, rng.randint(2, 4))
        if entity["kind"] == "person":
            entity.update(born=rng.randint(1700, 1900), birthplace=rng.choice(cities)["title"],
                          occupation=rng.choice(OCCUPATIONS))
        elif entity["kind"] == "city":
            entity.update(founded=rng.randint(900, 1600), population=rng.randint(2, 900) * 1000,
                          river=f"{names.word(2)} River")
        else:
            entity.update(founded=rng.randint(1750, 1950), founder=rng.choice(persons)["title"],
                          headquarters=rng.choice(cities)["title"], industry=rng.choice(INDUSTRIES))
    for organization in organizations:
        founder = next(p for p in persons if p["title"] == organization["founder"])
        founder.setdefault("founded_orgs", []).append(organization["title"])
    return entities


def fact_plan(entity: dict) -> list[tuple[tuple[str, ...], str, str]]:
    """(section path, attribute, sentence) for every fact in an entity's article.
    Facts are worded apart from the questions that ask for them ("born" is asked,
    "the parish register records the arrival" is written), so finding them takes
    knowing which section holds what, as global selection does, not word overlap."""
    title = entity["title"]
    if entity["kind"] == "person":
        plan = [(("Early life",), "born", f"The parish register records the arrival of {title} in {entity['born']}."),
                (("Early life", "Family"), "birthplace",
                 f"The parents of {title} kept a house in {entity['birthplace']}."),
                (("Career", "Training"), "occupation", f"{title} learned the craft of a {entity['occupation']}.")]
        for org in entity.get("founded_orgs", []):
            plan.append((("Career", "Later work"), "founded_org", f"{title} set up the {org}."))
        award_places = [("Career", "Later work"), ("Recognition",), ("Legacy",), ("Early life", "Family")]
    elif entity["kind"] == "city":
        plan = [(("History",), "founded", f"The first charter of {title} dates from {entity['founded']}."),
                (("Geography",), "river", f"The streets of {title} run down to the {entity['river']}."),
                (("Demographics",), "population", f"Some {entity['population']:,} residents call {title} home.")]
        award_places = [("History", "Early settlement"), ("Culture",), ("Culture", "Festivals"), ("Demographics",)]
    else:
        plan = [(("History",), "founded", f"The {title} opened its doors in {entity['founded']}."),
                (("History", "Founding"), "founder", f"The {title} was the idea of {entity['founder']}."),
                (("Operations",), "headquarters", f"The offices of the {title} stand in {entity['headquarters']}."),
                (("Operations", "Products"), "industry",
                 f"Most of what the {title} makes belongs to the trade of {entity['industry']}.")]
        award_places = [("History", "Founding"), ("Recognition",), ("Operations", "Products"), ("Legacy",)]
    for award, place in zip(entity["awards"], award_places):
        plan.append((place, "award", f"{title} received the {award}."))
    return plan


SKELETON = {
    "person": [("Early life", ["Family"]), ("Career", ["Training", "Later work"]), ("Recognition", []), ("Legacy", [])],
    "city": [("History", ["Early settlement"]), ("Geography", []), ("Demographics", []), ("Culture", ["Festivals"])],
    "organization": [("History", ["Founding"]), ("Operations", ["Products"]), ("Recognition", []), ("Legacy", [])],
}


def lead_sentence(entity: dict) -> str:
    if entity["kind"] == "person":
        return f"{entity['title']} is a figure remembered in {entity['region']}."
    if entity["kind"] == "city":
        return f"{entity['title']} is a city in {entity['region']}."
    return f"The {entity['title']} is an organization based in {entity['region']}."


def build_article(rng: random.Random, entity: dict, target_words: int) -> Article:
    region, place = entity["region"], entity["town"]
    article = Article(entity["id"], entity["title"], entity["kind"])
    subject = entity["title"]
    article.abstract = [lead_sentence(entity) + " " + filler_paragraph(rng, region, place, 3, subject)]
    article.sections = [{"title": name, "paragraphs": [], "subsections": [{"title": s, "paragraphs": []} for s in subs]}
                        for name, subs in SKELETON[entity["kind"]]]
    for path, _, sentence in fact_plan(entity):
        article.section(path).append(with_fact(rng, sentence, region, place, subject))
    # pad every node, then grow random nodes until the article reaches its target length
    nodes = [article.section((s["title"],)) for s in article.sections]
    nodes += [article.section((s["title"], u["title"])) for s in article.sections for u in s["subsections"]]
    for node in nodes:
        if not node:
            node.append(filler_paragraph(rng, region, place, rng.randint(3, 5), subject))
    while len(article.contents().split()) < target_words:
        node = rng.choice(nodes)
        node.insert(rng.randint(0, len(node)), filler_paragraph(rng, region, place, rng.randint(3, 6), subject))
    return article


@dataclass(frozen=True)
class SyntheticSettings:
    """The embedded encyclopedia (config `datasets.NAME.synthetic`)."""

    seed: int  # the same settings make the same articles and questions
    num_articles: int  # at least 6: two of each kind of entity
    num_questions: int
    min_words: int  # each article's length is drawn from [min_words, max_words]
    max_words: int
    global_fraction: float  # share of questions that need a whole article (Global)
    kind_weights: dict | None = None  # relative weights of local, bridge, comparison questions; None: equal

    def __post_init__(self):
        if self.num_articles < 6:
            raise ValueError("synthetic data needs at least 6 articles (two of each kind)")
        if self.min_words > self.max_words:
            raise ValueError(f"synthetic data: min_words {self.min_words} > max_words {self.max_words}")


def generate(settings: SyntheticSettings) -> tuple[list[Article], list[dict]]:
    """Articles and questions, identical for identical settings."""
    seed, num_questions = settings.seed, settings.num_questions
    rng = random.Random(seed)
    entities = build_entities(rng, NameMaker(rng), settings.num_articles)
    articles = [build_article(rng, e, rng.randint(settings.min_words, settings.max_words)) for e in entities]
    facts = {e["title"]: {attr: path for path, attr, _ in fact_plan(e)} for e in entities}
    makers = {"local": local_question, "bridge": bridge_question, "comparison": comparison_question}
    weights = [(settings.kind_weights or {}).get(kind, 1.0) for kind in makers]
    questions, seen = [], set()
    while len(questions) < num_questions:
        maker = global_question if rng.random() < settings.global_fraction else \
            rng.choices(list(makers.values()), weights)[0]
        question = maker(rng, entities, facts)
        if question and question["question"] not in seen:
            seen.add(question["question"])
            question["id"] = f"synq-{len(questions):05d}"
            questions.append(question)
    return articles, questions


def by_title(entities: list[dict]) -> dict:
    return {e["title"]: e for e in entities}


def make_question(text: str, answers: list[str], support: list[tuple[str, tuple]], kind: str, label: str) -> dict:
    return {"question": text, "golden_answers": answers, "type": kind, "label": label,
            "supporting": [{"title": t, "path": list(p)} for t, p in support]}


def local_question(rng, entities, facts):
    entity = rng.choice(entities)
    title = entity["title"]
    options = {
        "person": [("born", f"In what year was {title} born?", str(entity.get("born"))),
                   ("birthplace", f"In which city was {title} born?", entity.get("birthplace")),
                   ("occupation", f"What was the occupation of {title}?", entity.get("occupation"))],
        "city": [("population", f"What is the population of {title}?", f"{entity.get('population', 0):,}"),
                 ("founded", f"In what year was {title} founded?", str(entity.get("founded"))),
                 ("river", f"Which waterway flows past {title}?", entity.get("river"))],
        "organization": [("headquarters", f"Where does the {title} have its headquarters?", entity.get("headquarters")),
                         ("founder", f"Who founded the {title}?", entity.get("founder")),
                         ("founded", f"When was the {title} established?", str(entity.get("founded"))),
                         ("industry", f"In what field does the {title} mainly work?", entity.get("industry"))],
    }[entity["kind"]]
    attribute, text, answer = rng.choice(options)
    answers = [answer] + ([answer.replace(",", "")] if attribute == "population" else [])
    return make_question(text, answers, [(title, facts[title][attribute])], "local", "Local")


def bridge_question(rng, entities, facts):
    index = by_title(entities)
    organization = rng.choice([e for e in entities if e["kind"] == "organization"])
    founder = index[organization["founder"]]
    title = organization["title"]
    if rng.random() < 0.5:
        text, answer, attribute = f"In what year was the founder of the {title} born?", str(founder["born"]), "born"
    else:
        text, answer, attribute = f"In which city was the founder of the {title} born?", founder["birthplace"], "birthplace"
    support = [(title, facts[title]["founder"]), (founder["title"], facts[founder["title"]][attribute])]
    return make_question(text, [answer], support, "bridge", "Local")


def comparison_question(rng, entities, facts):
    kind = rng.choice(["person", "city"])
    first, second = rng.sample([e for e in entities if e["kind"] == kind], 2)
    if kind == "person":
        if first["born"] == second["born"]:
            return None
        text = f"Who was born first, {first['title']} or {second['title']}?"
        winner, attribute = min((first, second), key=lambda e: e["born"]), "born"
    else:
        if first["population"] == second["population"]:
            return None
        text = f"Which city has the larger population, {first['title']} or {second['title']}?"
        winner, attribute = max((first, second), key=lambda e: e["population"]), "population"
    support = [(e["title"], facts[e["title"]][attribute]) for e in (first, second)]
    return make_question(text, [winner["title"]], support, "comparison", "Local")


def global_question(rng, entities, facts):
    """A count spread over several sections: only the whole article answers it."""
    entity = rng.choice(entities)
    title = entity["title"]
    count = len(entity["awards"])
    plan = fact_plan(entity)
    support = [(title, path) for path, attribute, _ in plan if attribute == "award"]
    text = f"How many different awards did {title} receive in total?"
    return make_question(text, [str(count), NUMBER_WORDS[count]], support, "global", "Global")
