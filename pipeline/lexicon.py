"""Word lists for story features: cross-lingual names and notions, months, stop words.

Data, not logic: extend these tables to teach `pipeline.stories` a new actor, place or
kind of event (an Arabic, French and English spelling on one line).
"""

from __future__ import annotations

from veille.pipeline.normalize import tokens

# Names: people, agencies, countries, places. Feature "x:<id>".
NAMES: dict[str, tuple[str, ...]] = {
    # people
    "hammouchi": ("hammouchi", "hamouchi", "حموشي"),
    "retailleau": ("retailleau", "ريتايو", "روتايو", "ريطايو"),
    "darmanin": ("darmanin", "دارمانان", "دارمانين"),
    "nunez": ("nuñez", "nunez", "نونيز", "نونييز"),
    "berthon": ("berthon", "برتون", "بيرتون"),
    "lerner": ("lerner", "ليرنر", "لرنر"),
    "veaux": ("veaux", "فريديريك فو", "فريدريك فو"),
    "laugier": ("laugier", "لوجيي", "لوجييه"),
    "macron": ("macron", "ماكرون"),
    "mohammed-vi": ("mohammed vi", "محمد السادس"),
    "bourita": ("bourita", "بوريطة"),
    "laftit": ("laftit", "لفتيت"),
    "barrot": ("barrot", "بارو"),
    "tebboune": ("tebboune", "تبون"),
    "lecourtier": ("lecourtier", "لوكورتيي"),
    # agencies
    "dgsn": ("dgsn", "sûreté nationale", "direction générale de la sûreté nationale",
             "المديرية العامة للأمن الوطني", "الأمن الوطني"),
    "dgst": ("dgst", "surveillance du territoire", "مراقبة التراب الوطني",
             "territorial surveillance"),
    "dgsi": ("dgsi", "direction générale de la sécurité intérieure", "الأمن الداخلي",
             "general directorate for internal security", "internal security"),
    "dgse": ("dgse", "direction générale de la sécurité extérieure", "الأمن الخارجي",
             "external security"),
    "bcij": ("bcij", "المكتب المركزي للأبحاث القضائية", "central bureau of judicial investigation"),
    "pnat": ("pnat", "parquet national antiterroriste", "النيابة العامة الوطنية لمكافحة الإرهاب"),
    "interpol": ("interpol", "الانتربول", "انتربول"),
    "europol": ("europol", "يوروبول"),
    "guardia-civil": ("guardia civil", "الحرس المدني"),
    # countries and their people
    "morocco": ("maroc", "marocain", "marocaine", "marocains", "marocaines", "morocco",
                "moroccan", "moroccans", "المغرب", "مغربي", "مغربية", "مغاربة"),
    "france": ("france", "français", "française", "françaises", "french", "فرنسا", "فرنسي",
               "فرنسية", "فرنسيين", "فرنسيون"),
    "spain": ("espagne", "espagnol", "espagnole", "espagnols", "spain", "spanish", "إسبانيا",
              "اسبانيا", "إسباني", "إسبانية"),
    "algeria": ("algérie", "algérien", "algérienne", "algériens", "algeria", "algerian",
                "الجزائر", "جزائري", "جزائرية"),
    "belgium": ("belgique", "belge", "belgium", "belgian", "بلجيكا", "بلجيكي"),
    "portugal": ("portugal", "البرتغال"),
    # places
    "paris": ("paris", "باريس"),
    "rabat": ("rabat", "الرباط"),
    "tanger": ("tanger", "tangier", "tangiers", "طنجة"),
    "casablanca": ("casablanca", "الدار البيضاء"),
    "marrakech": ("marrakech", "marrakesh", "مراكش"),
    "fes": ("fès", "fez", "فاس"),
    "oujda": ("oujda", "وجدة"),
    "nador": ("nador", "الناظور"),
    "tetouan": ("tétouan", "tetouan", "تطوان"),
    "agadir": ("agadir", "أكادير"),
    "kenitra": ("kénitra", "kenitra", "القنيطرة"),
    "madrid": ("madrid", "مدريد"),
    "lyon": ("lyon", "ليون"),
    "marseille": ("marseille", "مرسيليا"),
    "bruxelles": ("bruxelles", "brussels", "بروكسيل", "بروكسل"),
    "ile-de-france": ("île-de-france", "île de france", "إيل دو فرانس"),
    "sahel": ("sahel", "الساحل"),
}

# Notions that tell one kind of event from another. Feature "c:<id>". Words every
# story of the subject uses (security, police, cooperation, visit) are left out:
# they say nothing about which event it is.
NOTIONS: dict[str, tuple[str, ...]] = {
    "olympics": ("paralympiques", "paralympic", "paralympics", "البارالمبية",
                 "jeux olympiques", "jo", "olympiques", "olympics", "olympic games", "olympic",
                 "الألعاب الأولمبية", "الأولمبية", "الأولمبياد", "أولمبياد"),
    "world-cup": ("coupe du monde", "world cup", "كأس العالم", "المونديال", "مونديال"),
    "afcon": ("coupe d'afrique des nations", "africa cup of nations", "afcon",
              "كأس إفريقيا", "كأس أفريقيا"),
    "terror-plot": ("attentat", "attentats", "projet d'attentat", "attack plot", "attack",
                    "عمل إرهابي", "هجوم", "اعتداء"),
    "jihadist": ("djihadiste", "djihadistes", "jihadiste", "jihadistes", "jihadist",
                 "jihadists", "داعش", "daech", "daesh", "isis", "état islamique", "islamic state"),
    "extradition": ("extradition", "extradé", "extradée", "extrader", "extradited",
                    "extradite", "تسليم", "تسليمه"),
    "red-notice": ("notice rouge", "red notice", "النشرة الحمراء", "نشرة حمراء"),
    "arrest-warrant": ("mandat d'arrêt", "arrest warrant", "مذكرة توقيف", "مذكرة بحث"),
    "fugitive": ("fugitif", "fugitive", "fugitifs", "الفار", "فار", "هارب", "مبحوث عنه"),
    "drugs": ("drogue", "drogues", "stupéfiants", "cocaïne", "haschich", "drug", "drugs",
              "cocaine", "hashish", "المخدرات", "مخدرات", "الكوكايين", "الشيرا"),
    "explosives": ("explosifs", "explosif", "engins explosifs", "explosives", "explosive",
                   "متفجرات", "المتفجرات"),
    "canine": ("cynotechnique", "cynotechniques", "maîtres-chiens", "maîtres chiens",
               "dog handlers", "sniffer dogs", "cynotechnic", "الكلاب المدربة", "السينوتقنية"),
    "deployment": ("déploiement", "déployés", "détachement", "contingent", "renforts",
                   "deployment", "deployed", "تعزيزات", "انتشار"),
    "terror-cell": ("cellule terroriste", "terror cell", "خلية إرهابية"),
    "cybercrime": ("cybercriminalité", "cybercrime", "الجريمة الإلكترونية"),
    "espionage": ("espionnage", "espionage", "التجسس"),
    "weapons": ("armes", "arme à feu", "firearms", "weapons", "أسلحة", "الأسلحة"),
    "trafficking": ("traite des êtres humains", "human trafficking", "passeurs", "smugglers",
                    "الاتجار بالبشر", "تهريب البشر"),
    "medal": ("médaille", "medal", "وسام", "الميدالية", "ميدالية"),
    "legion-honour": ("légion d'honneur", "legion of honour", "legion of honor", "جوقة الشرف"),
    "migration": ("migration", "migratoire", "migrants", "الهجرة", "المهاجرين"),
    "recruitment": ("recrutement", "concours", "recruitment", "مباراة", "توظيف"),
    "trial": ("procès", "trial", "محاكمة"),
    "trade": ("échanges commerciaux", "exportations", "importations", "trade", "exports",
              "imports", "المبادلات التجارية", "الصادرات", "الواردات"),
    "interior-minister": ("ministre de l'intérieur", "interior minister",
                          "minister of the interior", "وزير الداخلية"),
}

MONTHS: dict[str, int] = {}
for _n, _names in enumerate(
    (
        "janvier january يناير جانفي",
        "février february فبراير فيفري",
        "mars march مارس",
        "avril april أبريل ابريل أفريل",
        "mai may ماي مايو",
        "juin june يونيو جوان",
        "juillet july يوليوز يوليو جويلية",
        "août august غشت أغسطس اوت",
        "septembre september شتنبر سبتمبر",
        "octobre october أكتوبر",
        "novembre november نونبر نوفمبر",
        "décembre december دجنبر ديسمبر",
    ),
    start=1,
):
    for _name in _names.split():
        MONTHS[tokens(_name)[0]] = _n

STOP_WORDS = frozenset(
    t
    for words in (
        # French
        "au aux avec ce ces cet cette dans de des du elle en et eux il ils je la le les leur leurs"
        " lui ma mais me meme mes moi mon ne nos notre nous on ou par pas pour qu que qui sa se"
        " ses son sur ta te tes toi ton tu un une vos votre vous ete etre avoir avait sont est ont"
        " fait faire ainsi alors apres aussi autre autres avant bien car cela celle celui comme"
        " contre depuis deux dont encore entre lors leurs moins plus plusieurs selon sous tous tout"
        " toute toutes tres trois vers via chez lundi mardi mercredi jeudi vendredi samedi dimanche"
        " hier aujourd demain semaine mois annee annees jour jours dernier derniere derniers"
        " premier premiere cours cadre part notamment egalement afin ainsi selon indique precise"
        " souligne ajoute rapporte affirme declare explique estime lire aussi monsieur madame"
        " mme m",
        # English
        " a an and are as at be been but by for from had has have he her his in into is it its"
        " of on or that the their them they this to was were which while who will with would"
        " after also about against all any before between both during each more most other over"
        " said says such than then there these those through under until very what when where"
        " monday tuesday wednesday thursday friday saturday sunday yesterday today week month"
        " year years last first new one two three mr mrs ms according read",
        # Arabic (normalised and stripped of the article by tokens())
        " في من على الى إلى عن مع هذا هذه ذلك تلك التي الذي الذين اللذين هو هي هم كان كانت"
        " يكون تم قد لقد ان أن إن او أو ثم كما بين بعد قبل خلال حول عند منذ حيث لدى غير كل"
        " بعض اي أي ما لا لم لن هناك وقد وفي ومن وعلى وأن التى عبر ضد الى اليوم امس أمس"
        " الاثنين الثلاثاء الأربعاء الخميس الجمعة السبت الأحد يوم أيام شهر سنة عام اطار إطار"
        " وذلك وهو وهي أنه انه بها به فيها فيه منها منه عليها عليه اليها إليها لها له لهم"
        " حسب وفق وفقا قال وقال أكد وأكد أضاف وأضاف أوضح وأوضح أفاد مصدر مصادر اقرأ أيضا",
    )
    for t in tokens(words)
)

# generic words of institution and event names ("General Directorate for National
# Security", "Médaille d'honneur"): capitalised there, but they name no one
NAME_PARTS = frozenset(
    tokens(
        "director directorate general national security police office ministry minister interior"
        " kingdom royal games honor honour court prosecutor department service services agency"
        " bureau central state president prime foreign affairs european union united nations cup"
        " world africa african chief head deputy international public order medal gold olympic"
        " direction directeur directrice generale nationale surete securite surveillance territoire"
        " ministere ministre interieur royaume jeux medaille honneur parquet coupe monde afrique"
        " europe union nations etat republique president premier chef officier commissaire"
        " prefecture brigade judiciaire affaires etrangeres conseil assemblee justice tribunal"
    )
)
