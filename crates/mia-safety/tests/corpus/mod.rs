//! A deterministic, seeded generator of labelled chat and marketing messages in several
//! languages, with personal data at known byte offsets and many hard negatives (order
//! numbers, SKUs, prices, versions, dates, postcodes, Luhn-invalid cards, bad IBANs, invalid
//! IPs, file names, @handles) around them.
//!
//! Shared by the accuracy test (`tests/pii_corpus.rs`) and the benches.

#![allow(dead_code, clippy::unwrap_used)]

pub(crate) mod entities;
pub(crate) mod finance;
pub(crate) mod mixes;

use entities::Country;

/// SplitMix64: small, fast, deterministic.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 1.0 < p
    }

    pub(crate) fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// One labelled entity: kind (`EMAIL`, `PHONE`, ...) and byte range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Label {
    pub(crate) kind: &'static str,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// One generated message.
#[derive(Clone, Debug)]
pub(crate) struct Message {
    pub(crate) locale: &'static str,
    pub(crate) text: String,
    pub(crate) labels: Vec<Label>,
}

struct Lang {
    locale: &'static str,
    countries: &'static [Country],
    names: &'static [&'static str],
    order_words: &'static [&'static str],
    templates: &'static [&'static str],
}

const LANGS: &[Lang] = &[
    Lang {
        locale: "en",
        countries: &[Country::Us, Country::Gb],
        names: &["Emily", "John", "Sarah", "Mike"],
        order_words: &[
            "Order",
            "order #",
            "Order no.",
            "Invoice",
            "Ticket",
            "Ref:",
            "Tracking number",
        ],
        templates: &[
            "Hi {NAME}! Our spring sale is live 🌸 Questions? Call {PHONE} or email {EMAIL}.",
            "Your {ORDER} has shipped and arrives {DATE}. Track it here: {URL}",
            "Text me at {PHONE}, I'm free after {TIME}",
            "New login to your account from {IP} on {DATE}. Not you? Reply STOP.",
            "Please wire the deposit to {IBAN} (reference {ORDER}).",
            "my card is {CARD} exp 08/27, can you charge it?",
            "We accept crypto! BTC: {CRYPTO}",
            "Get 20% off with code SPRING{YEAR} — now just {PRICE}. Details at {URL}",
            "Reach our support team: {EMAIL} / {PHONE} (Mon-Fri {TIME})",
            "The new app {VERSION} is here, download {FILE} for the release notes.",
            "Follow {HANDLE} for daily deals! {QTY} happy customers can't be wrong.",
            "Ship to: 221B Baker St, London {ZIP}, phone {PHONE}",
            "card {BADCARD} was declined, try another one",
            "The server {BADIP} is not a valid address, use {IP} instead",
            "Send payment to {BADIBAN}? No, the IBAN is {IBAN}",
            "wallet {BADCRYPTO} looks wrong, mine is {CRYPTO}",
            "SKU {SKU} is back in stock for {PRICE}!",
            "Call us on {PHONE}.\nOr visit {URL}",
            "{EMAIL}",
            "{PHONE}",
            "Reply STOP to unsubscribe.",
            "Thanks {NAME}, see you on {DATE} at {TIME}!",
        ],
    },
    Lang {
        locale: "de",
        countries: &[Country::De, Country::At, Country::Ch],
        names: &["Anna", "Lukas", "Jonas", "Lea"],
        order_words: &[
            "Bestellung",
            "Bestellnummer",
            "Bestell-Nr.",
            "Rechnung",
            "Auftrag",
            "Kundennummer",
            "Sendungsnummer",
        ],
        templates: &[
            "Hallo {NAME}, Ihre {ORDER} wurde am {DATE} versendet. Fragen? Ruf an: {PHONE}",
            "Schreib mir an {EMAIL} oder per WhatsApp {PHONE} 😊",
            "Überweisung bitte an {IBAN}, Verwendungszweck {ORDER}.",
            "Nur heute: alles für {PRICE}! Jetzt shoppen: {URL}",
            "Meine Karte: {CARD}, gültig bis 12/28",
            "Neue Anmeldung von {IP} – warst du das?",
            "Unser Laden: Hauptstr. 5, {ZIP}. Tel. {PHONE}, geöffnet {TIME}",
            "App-Update {VERSION} ist da! Infos im {FILE}",
            "Folge {HANDLE} für mehr Angebote – schon {QTY} Kunden sind dabei.",
            "Spenden gern an {CRYPTO} 🙏",
            "Karte {BADCARD} abgelehnt, bitte andere Karte nutzen",
            "Die IBAN {BADIBAN} ist falsch, richtig ist {IBAN}",
            "Art.-Nr. {SKU} wieder verfügbar – {PRICE}",
            "Kontakt: {EMAIL}\n{PHONE}\n{URL}",
            "Zum Abmelden antworte STOP.",
            "Bis {DATE} um {TIME}, {NAME}!",
            "{PHONE} – ruf einfach an",
        ],
    },
    Lang {
        locale: "es",
        countries: &[Country::Es, Country::Mx],
        names: &["Lucía", "Carlos", "Sofía", "Javier"],
        order_words: &[
            "Pedido",
            "pedido nº",
            "Factura",
            "Referencia",
            "Número de pedido",
        ],
        templates: &[
            "¡Hola {NAME}! Tu {ORDER} llega el {DATE}. Dudas: {PHONE}",
            "Escríbenos a {EMAIL} o llámanos al {PHONE}.",
            "Transferencia a {IBAN}, concepto {ORDER}",
            "Rebajas: todo a {PRICE} 🔥 {URL}",
            "Mi tarjeta es {CARD}, cobra el pedido por favor",
            "Acceso nuevo desde {IP}. ¿Fuiste tú?",
            "Tienda: C/ Mayor 10, {ZIP}. Tel {PHONE}",
            "Actualiza a la versión {VERSION}, mira el vídeo {FILE}",
            "Síguenos en {HANDLE} 💃 ya somos {QTY} clientes",
            "Paga con cripto: {CRYPTO}",
            "La tarjeta {BADCARD} fue rechazada",
            "La IP {BADIP} no existe",
            "Mi móvil: {PHONE}",
            "Para darte de baja responde STOP",
            "Nos vemos el {DATE} a las {TIME}",
        ],
    },
    Lang {
        locale: "ru",
        countries: &[Country::Ru],
        names: &["Ольга", "Иван", "Дмитрий", "Елена"],
        order_words: &["Заказ", "заказ №", "Счёт", "Артикул", "Трек-номер"],
        templates: &[
            "Здравствуйте, {NAME}! Ваш {ORDER} доставим {DATE}. Вопросы: {PHONE}",
            "Пишите на {EMAIL} или звоните {PHONE}",
            "Реквизиты для оплаты: {IBAN}",
            "Скидки до 50%! Всего {PRICE}. Подробнее: {URL}",
            "Номер карты {CARD}, срок 09/26",
            "Вход с нового IP {IP} — это вы?",
            "Адрес: ул. Ленина 1, {ZIP} Москва, тел. {PHONE}",
            "Вышла версия {VERSION}, скачайте {FILE}",
            "Подписывайтесь на {HANDLE} — нас уже {QTY}!",
            "Кошелёк для оплаты: {CRYPTO}",
            "Карта {BADCARD} не прошла проверку",
            "Чтобы отписаться, ответьте СТОП",
            "Мой номер {PHONE}, звоните после {TIME}",
            "До встречи {DATE} в {TIME}",
        ],
    },
    Lang {
        locale: "pt",
        countries: &[Country::Br, Country::Pt],
        names: &["João", "Ana", "Pedro", "Beatriz"],
        order_words: &[
            "Pedido",
            "Encomenda",
            "Fatura",
            "Código de rastreio",
            "pedido nº",
        ],
        templates: &[
            "Oi {NAME}! Seu {ORDER} chega dia {DATE}. Dúvidas: {PHONE}",
            "Fale com a gente: {EMAIL} ou WhatsApp {PHONE}",
            "Transferência para {IBAN}",
            "Promoção: tudo por {PRICE}! Acesse {URL}",
            "Meu cartão é {CARD}",
            "Novo acesso do IP {IP}",
            "Loja: Av. Paulista 1000, CEP {ZIP}, tel {PHONE}",
            "Nova versão {VERSION}! Veja o vídeo {FILE}",
            "Siga {HANDLE} — já somos {QTY} clientes",
            "Aceitamos cripto: {CRYPTO}",
            "O cartão {BADCARD} foi recusado",
            "Para sair da lista responda STOP",
            "Até {DATE} às {TIME}!",
            "{PHONE} 📲",
        ],
    },
    Lang {
        locale: "tr",
        countries: &[Country::Tr],
        names: &["Ayşe", "Mehmet", "Zeynep", "Emre"],
        order_words: &["Sipariş", "Sipariş no", "Fatura", "Kargo takip"],
        templates: &[
            "Merhaba {NAME}, {ORDER} {DATE} tarihinde kargoda. Bilgi: {PHONE}",
            "Bize {EMAIL} adresinden ya da {PHONE} numarasından ulaşın",
            "Ödeme için IBAN: {IBAN}",
            "Büyük indirim: sadece {PRICE}! {URL}",
            "Kart numaram {CARD}",
            "Yeni giriş: {IP}",
            "Mağaza: Atatürk Cad. 12, {ZIP} İstanbul. Tel: {PHONE}",
            "Yeni sürüm {VERSION} yayında, {FILE} dosyasına bakın",
            "{HANDLE} hesabımızı takip edin, {QTY} müşteri bizi seçti",
            "Kripto ile ödeme: {CRYPTO}",
            "Listeden çıkmak için STOP yazın",
            "{DATE} saat {TIME} görüşürüz",
        ],
    },
    Lang {
        locale: "fr",
        countries: &[Country::Fr, Country::Ch],
        names: &["Claire", "Pierre", "Camille", "Louis"],
        order_words: &["Commande", "commande n°", "Facture", "Référence"],
        templates: &[
            "Bonjour {NAME}, votre {ORDER} arrive le {DATE}. Une question ? {PHONE}",
            "Écrivez-nous à {EMAIL} ou appelez le {PHONE}",
            "Virement sur {IBAN}",
            "Soldes : tout à {PRICE} ! {URL}",
            "Ma carte : {CARD}",
            "Connexion depuis {IP}",
            "Boutique : 12 rue de Rivoli, {ZIP} Paris. Tél. {PHONE}",
            "Version {VERSION} disponible, voir {FILE}",
            "Suivez {HANDLE} — déjà {QTY} clients !",
            "Répondez STOP pour vous désabonner",
        ],
    },
    Lang {
        locale: "it",
        countries: &[Country::It],
        names: &["Giulia", "Marco"],
        order_words: &["Ordine", "ordine n.", "Fattura"],
        templates: &[
            "Ciao {NAME}, il tuo {ORDER} arriva il {DATE}. Info: {PHONE}",
            "Scrivici a {EMAIL} o chiama il {PHONE}",
            "Bonifico su {IBAN}",
            "Saldi: tutto a {PRICE}! {URL}",
            "Rispondi STOP per annullare l'iscrizione",
        ],
    },
];

/// Wrappers around an entity: brackets, quotes, punctuation, emoji, markdown.
const WRAPS: &[(&str, &str)] = &[
    ("", ""),
    ("", ""),
    ("", ""),
    ("", ""),
    ("(", ")"),
    ("\"", "\""),
    ("«", "»"),
    ("", "."),
    ("", ","),
    ("", "!"),
    ("", " 🙂"),
    ("👉", ""),
    ("", "👈"),
    ("*", "*"),
    ("[", "]"),
    ("", "\n"),
    ("\u{200B}", ""),
];

struct Builder {
    text: String,
    labels: Vec<Label>,
}

impl Builder {
    fn entity(&mut self, rng: &mut Rng, kind: &'static str, value: &str) {
        let (open, close) = *rng.pick(WRAPS);
        self.text.push_str(open);
        let start = self.text.len();
        self.text.push_str(value);
        self.labels.push(Label {
            kind,
            start,
            end: self.text.len(),
        });
        self.text.push_str(close);
    }
}

fn price(rng: &mut Rng, locale: &str) -> String {
    let whole = 1 + rng.below(2500);
    let cents = rng.below(100);
    match locale {
        "de" | "es" | "it" | "fr" | "pt" if rng.chance(0.5) => format!("{whole},{cents:02} €"),
        "de" | "es" | "it" => format!("€{whole}.{cents:02}"),
        "ru" => format!("{} {:03} ₽", 1 + rng.below(99), rng.below(1000)),
        "pt" => format!("R$ {whole},{cents:02}"),
        "tr" => format!("{whole}.{:03} TL", rng.below(1000)),
        "fr" => format!("{whole} €"),
        _ => match rng.below(3) {
            0 => format!("${whole}.{cents:02}"),
            1 => format!("${},{:03}.00", 1 + rng.below(99), rng.below(1000)),
            _ => format!("£{whole}"),
        },
    }
}

fn date(rng: &mut Rng, locale: &str) -> String {
    let (d, m, y) = (1 + rng.below(28), 1 + rng.below(12), 2024 + rng.below(4));
    match (locale, rng.below(3)) {
        ("en", 0) => format!("{m}/{d}/{y}"),
        ("en", _) => format!("{y}-{m:02}-{d:02}"),
        (_, 0) => format!("{d:02}.{m:02}.{y}"),
        (_, 1) => format!("{d:02}/{m:02}/{y}"),
        _ => format!("{y}-{m:02}-{d:02}"),
    }
}

fn zip(rng: &mut Rng, locale: &str) -> String {
    match locale {
        "en" => rng.pick(&["SW1A 1AA", "NW1 6XE", "EC1A 1BB"]).to_string(),
        "pt" => format!("{:05}-{:03}", rng.below(99999), rng.below(1000)),
        "ru" => format!("{}", 100_000 + rng.below(900_000)),
        _ => format!("{:05}", 1000 + rng.below(98000)),
    }
}

fn order(rng: &mut Rng, lang: &Lang) -> String {
    let word = *rng.pick(lang.order_words);
    let number = match rng.below(4) {
        0 => format!("{}", 10_000_000 + rng.below(89_999_999)),
        1 => format!("{}", 100_000_000 + rng.below(8_999_999_999)),
        2 => format!("{}-{}", 2024 + rng.below(3), 100_000 + rng.below(899_999)),
        _ => format!("{}", 1_000_000 + rng.below(8_999_999)),
    };
    let sep = if word.ends_with('#') || word.ends_with('№') {
        ""
    } else {
        " "
    };
    format!("{word}{sep}{number}")
}

/// Fills one template.
fn fill(rng: &mut Rng, lang: &Lang, template: &str, b: &mut Builder) {
    let country = *rng.pick(lang.countries);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        b.text.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let slot = &rest[open + 1..open + close];
        rest = &rest[open + close + 1..];
        match slot {
            "PHONE" => {
                // Mostly local numbers, sometimes a foreign one in international format.
                let value = if rng.chance(0.85) {
                    entities::phone(rng, country)
                } else {
                    let other = *rng.pick(&[
                        Country::De,
                        Country::Us,
                        Country::Ru,
                        Country::Br,
                        Country::Tr,
                        Country::Gb,
                    ]);
                    let v = entities::phone(rng, other);
                    if v.starts_with('+') {
                        v
                    } else {
                        entities::phone(rng, country)
                    }
                };
                b.entity(rng, "PHONE", &value);
            }
            "EMAIL" => {
                let v = entities::email(rng);
                b.entity(rng, "EMAIL", &v);
            }
            "URL" => {
                let v = entities::url(rng);
                b.entity(rng, "URL", &v);
            }
            "CARD" => {
                let v = entities::card(rng);
                b.entity(rng, "CREDIT_CARD", &v);
            }
            "IBAN" => {
                let v = entities::iban(rng, country);
                b.entity(rng, "IBAN", &v);
            }
            "IP" => {
                let v = entities::ip(rng);
                b.entity(rng, "IP", &v);
            }
            "CRYPTO" => {
                let v = entities::crypto(rng);
                b.entity(rng, "CRYPTO", &v);
            }
            other => {
                let v = negative(rng, lang, other);
                b.text.push_str(&v);
            }
        }
    }
    b.text.push_str(rest);
}

/// A hard negative or plain filler for `slot`.
fn negative(rng: &mut Rng, lang: &Lang, slot: &str) -> String {
    let locale = lang.locale;
    match slot {
        "NAME" => rng.pick(lang.names).to_string(),
        "ORDER" => order(rng, lang),
        "DATE" => date(rng, locale),
        "TIME" => rng
            .pick(&["10:00", "18:30", "9-17", "10:00–18:00", "9:00-20:00", "21h"])
            .to_string(),
        "PRICE" => price(rng, locale),
        "YEAR" => format!("{}", 2024 + rng.below(4)),
        "VERSION" => {
            let v = format!("{}.{}.{}", 1 + rng.below(20), rng.below(12), rng.below(30));
            match rng.below(3) {
                0 => format!("v{v}"),
                1 => format!("{v}.{}", rng.below(9)),
                _ => v,
            }
        }
        "FILE" => rng
            .pick(&[
                "promo.mp4",
                "catalog.pdf",
                "banner@2x.png",
                "notes.txt",
                "README.md",
                "video.mov",
                "price_list.xlsx",
            ])
            .to_string(),
        "HANDLE" => rng
            .pick(&["@mia_shop", "@deals_daily", "@tienda_es", "@magaza"])
            .to_string(),
        "QTY" => match rng.below(3) {
            0 => format!("{}", 10_000 + rng.below(2_000_000)),
            1 => format!(
                "{} {:03} {:03}",
                1 + rng.below(9),
                rng.below(1000),
                rng.below(1000)
            ),
            _ => format!("{},{:03}", 1 + rng.below(999), rng.below(1000)),
        },
        "ZIP" => zip(rng, locale),
        "SKU" => match rng.below(3) {
            0 => format!("SKU-{}", 10_000_000 + rng.below(89_999_999)),
            1 => format!("{}-{}", 4000 + rng.below(999), 100 + rng.below(899)),
            _ => format!("A{}B", 1_000_000 + rng.below(8_999_999)),
        },
        "BADCARD" => entities::bad_card(rng),
        "BADIBAN" => entities::bad_iban(rng),
        "BADIP" => entities::bad_ip(rng),
        "BADCRYPTO" => entities::bad_crypto(rng),
        _ => String::new(),
    }
}

/// `count` labelled messages from `seed`.
pub(crate) fn generate(seed: u64, count: usize) -> Vec<Message> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let lang = rng.pick(LANGS);
            let mut b = Builder {
                text: String::new(),
                labels: Vec::new(),
            };
            let sentences = 1 + rng.below(3);
            for i in 0..sentences {
                if i > 0 {
                    let joint = *rng.pick(&[" ", " ", "\n", "\n\n", " | ", " — ", "  "]);
                    b.text.push_str(joint);
                }
                let template = *rng.pick(lang.templates);
                let template = if rng.chance(0.15) {
                    // Quick typing: no space after a colon.
                    template.replace(": ", ":")
                } else {
                    template.to_owned()
                };
                fill(&mut rng, lang, &template, &mut b);
            }
            if rng.chance(0.2) {
                let tail = *rng.pick(&[" 🎉", " 🔥🔥", " ✅", " 😉", "!!", " #sale2026"]);
                b.text.push_str(tail);
            }
            Message {
                locale: lang.locale,
                text: b.text,
                labels: b.labels,
            }
        })
        .collect()
}
