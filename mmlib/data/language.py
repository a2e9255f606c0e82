"""The engravings' language: five annotators, each writing one caption of a scene.

`grammar="annotators"` in `mmlib.data.synthetic.generate` captions every image five times, as
five different people would: a terse one, a detailed one, one who names the technique and the
setting, one who reads the picture from the sky down and right to left, and one who keeps the
earlier system's "An engraving depicting ..." (the BLIP-2 captions of the `seed` format).
Every subject, attribute, count and relation has synonyms and paraphrases, chosen with Zipfian
weights (the first of a list most often), so the captions have a head of common words and a long
tail of rare ones. The tail comes from what is drawn, described in more ways: the precise names
of each kind (a ship may be a brig, a norfolk wherry or a tjalk; a tree a hornbeam or a garry
oak), the parts of each subject (a ship's mast, sails, pennant and hull), what it looks like, its
size (`SIZES`, and `KIND_SIZES`: the words only one kind takes, a "frail" boat, a "full-grown"
tree), where it stands, the sky, the ground, the hatching, the paper and the ink. Names are
picked with each annotator's steepness; the rest a little more steeply; details that few
captions give (looks, parts, poses, flight, paper, settings) with flatter weights
(`DETAIL_STEEP`), so each of their many words turns up now and then.

Every word is grounded: it names a fact of the scene or of the print's look (`Look`), or it
fills a declared non-visual slot, the annotator's voice (`VOICE_OPENERS`, `VOICE_EPITHETS`,
`VOICE_ADVERBS`: "we can see", "a quaint etching of", "evidently,"); `voice_tokens` counts the
tokens such slots hold (3.5 % of them). Every word is a real one, spelt as the lexicon spells
it: the captions make no slips of the pen. (They used to, at 12 % of the longer words, which
alone kept the word types, the hapax share and the out-of-vocabulary share in the issue's ranges;
with the larger lexicon they land there without any, and no measurement showed that noise helps
the lessons.) On the first 900 images' captions (the next 100 for out-of-vocabulary):
about 3,150 word types, a hapax share near 41 %, 12.6 words a caption, 8.4 % of validation words
out of the vocabulary at min_freq 5 and a Zipf slope of -1.24 (Flickr8k: 3,063, 44 %, 11.0,
8.3 %, -1.23; `bench/bench_language.py` prints the table). Subjects and their counts are always
named once each, so `subjects_named` parses each caption back to exactly the scene's subjects and
counts.

This module knows scenes only through the attributes it reads (`SceneLike`), so that
`mmlib.data.synthetic` can import it. The statistics at the end (`caption_statistics`) use the
issue's word rule: lower-cased runs of letters `[a-z]+`.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import random
import re
import unicodedata
from bisect import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

ANNOTATORS = ("terse", "detailed", "technique", "reordered", "legacy")
LEGACY_PREFIX = "An engraving depicting"

# ------------------------------------------------------------------------ what a scene is


class SubjectLike(Protocol):
    """What the captions read of one drawn subject (`mmlib.data.synthetic.Subject`)."""

    @property
    def kind(self) -> str: ...
    @property
    def box(self) -> tuple[float, float, float, float]: ...
    @property
    def size(self) -> str | None: ...
    @property
    def count(self) -> int: ...
    @property
    def phase(self) -> str | None: ...


class RelationLike(Protocol):
    """`subject` stands in `relation` to `object` (`mmlib.data.synthetic.Relation`)."""

    @property
    def subject(self) -> int: ...
    @property
    def relation(self) -> str: ...
    @property
    def object(self) -> int: ...


class SceneLike(Protocol):
    """A scene: its subjects and their relations (`mmlib.data.synthetic.Scene`)."""

    @property
    def subjects(self) -> Sequence[SubjectLike]: ...
    @property
    def relations(self) -> Sequence[RelationLike]: ...


@dataclass(frozen=True)
class Look:
    """What the print's style shows, as drawn (`synthetic._Style`, sizes as fractions of the
    image): the paper's tint, the line weight, the hatching's spacing and angle, the grain."""

    tint: float = -2.0  # -10 (darker, yellowed paper) .. 6 (pale paper)
    line: float = 0.0105  # 0.009 (fine) .. 0.012 (bold)
    spacing: float = 0.0195  # 0.017 (close hatching) .. 0.022 (open)
    angle: float = 45.0  # 45 +- 12: strokes fall to the right; 135 +- 12: to the left
    grain: float = 7.0  # 5 (smooth paper) .. 9 (coarse)


SKY_KINDS = ("bird", "sun", "moon")


@dataclass(frozen=True)
class _Thing:
    """One subject as the captions see it."""

    kind: str
    size: str | None
    count: int
    phase: str | None
    place: str  # "far left", "left", "centre", "right", "far right"
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class _Facts:
    """Everything the captions may say: the ground subjects left to right, the gap after each,
    the flock and the subject it flies over, the sun or moon, and the print's look."""

    ground: tuple[_Thing, ...]
    gaps: tuple[float, ...]  # gaps[i]: between ground[i] and ground[i + 1] (< 0: overlapping)
    links: tuple[str, ...]  # "beside" or "left of"
    birds: _Thing | None
    anchor: int  # index in `ground` of the subject the birds fly above
    lift: float  # height of the flock above the subjects below it
    light: _Thing | None
    look: Look


def _place(box: tuple[float, float, float, float]) -> str:
    centre = (box[0] + box[2]) / 2
    for edge, name in ((0.22, "far left"), (0.4, "left"), (0.6, "centre"), (0.78, "right")):
        if centre < edge:
            return name
    return "far right"


def _facts(scene: SceneLike, look: Look) -> _Facts:
    """The scene read as `_Facts`."""
    things = [
        _Thing(s.kind, s.size, s.count, s.phase, _place(s.box), s.box) for s in scene.subjects
    ]
    order = sorted(
        (i for i, s in enumerate(scene.subjects) if s.kind not in SKY_KINDS),
        key=lambda i: scene.subjects[i].box[0],
    )
    rank = {i: r for r, i in enumerate(order)}
    ground = tuple(things[i] for i in order)
    links = {(r.subject, r.object): r.relation for r in scene.relations}
    birds = next((t for t in things if t.kind == "bird"), None)
    light = next((t for t in things if t.kind in ("sun", "moon")), None)
    anchor, lift = 0, 0.0
    for r in scene.relations:
        if r.relation == "above":
            anchor = rank[r.object]
            lift = scene.subjects[r.object].box[1] - scene.subjects[r.subject].box[3]
    return _Facts(
        ground=ground,
        gaps=tuple(b.box[0] - a.box[2] for a, b in itertools.pairwise(ground)),
        links=tuple(links[(order[i], order[i + 1])] for i in range(len(order) - 1)),
        birds=birds,
        anchor=anchor,
        lift=lift,
        light=light,
        look=look,
    )


# ------------------------------------------------------------------------------ the lexicon
# Alternatives are separated by "|", the commonest first: a writer picks with Zipfian weights.


@dataclass(frozen=True)
class _Part:
    """A drawn part of a subject: its nouns (with their determiner) and what it looks like."""

    nouns: str
    looks: str


@dataclass(frozen=True)
class _Kind:
    """The words for one kind of subject."""

    nouns: str  # singular nouns; the last word of each is the head the parser reads
    looks: str  # adjectives for what the drawing of this kind shows
    parts: tuple[_Part, ...]
    poses: str  # participles: "a ship riding at anchor", "a tower rising"


KINDS: dict[str, _Kind] = {
    "ship": _Kind(
        "ship|boat|sailing ship|vessel|sailboat|sailing boat|galleon|brig|schooner|barque|sloop|"
        "merchantman|frigate|cutter|ketch|caravel|clipper|lugger|brigantine|carrack|yawl|smack|"
        "pinnace|windjammer|corvette|trading ship|cog|hoy|packet boat|fishing boat|sailing vessel|"
        "square-rigger|tall ship|merchant ship|cargo ship|trading vessel|coaster|collier|"
        "whaler|man-of-war|privateer|galliot|fluyt|dhow|felucca|xebec|polacca|bilander|"
        "hooker|wherry|sailing barge|keelboat|longboat|shallop|yacht|tartane|"
        "trawler|dogger|buss|herring buss|crabber|oyster boat|pilot boat|revenue cutter|"
        "sail training ship|caique|junk|nef|hulk|fishing smack|trading sloop|coastal trader|"
        "east indiaman|indiaman|galleass|galley|jagt|hoeker|boeier|schuyt|koff|pink|"
        "flyboat|catboat|gaff cutter|bawley|nobby|zulu|fifie|coble|gig|dory|"
        "sharpie|skipjack|bugeye|pungy|scow|gundalow|trow|sailing trawler|"
        "ketch-rigged barge|topsail schooner|brig-sloop|snow brig|mail packet|"
        "tea clipper|wool clipper|grain ship|timber ship|emigrant ship|slaver|thames barge|"
        "norfolk wherry|severn trow|baltic trader"
        "|banks schooner|quay punt|galway hooker|pilot cutter|fyne skiff|deal lugger"
        "|hastings lugger|cornish lugger|manx nobby|prawner|leigh bawley|brixham trawler"
        "|lowestoft smack|yarmouth drifter|drifter|bermuda sloop|friendship sloop"
        "|gloucester schooner|pinky schooner|chebacco boat|hudson sloop|lumber schooner"
        "|coasting schooner|packet ship|blackwall frigate|sloop-of-war|bomb ketch|fireship"
        "|storeship|victualler|troopship|guard ship|receiving ship|training brig|survey ship"
        "|whaling ship|sealer|sealing schooner|fruit schooner|opium clipper|nitrate clipper"
        "|guano ship|jute clipper|rice ship|spice ship|salt boat|lime barge|hay barge|coal brig"
        "|cattle boat|passage boat|spritsail barge|stumpy barge|billyboy|balinger"
        "|buccaneer ship|corsair|pirate ship|smuggler's lugger|excise cutter|customs cutter"
        "|lifeboat|sailing lifeboat|lightship|mission ship|hoveller|pilot lugger|seine boat"
        "|mackerel boat|pilchard boat|lobster boat|whelk boat|cockle boat|shrimper|peter boat"
        "|bumboat|tender|sailing pram|scow sloop|lugsail boat|spritsail boat|lateen boat|baghlah"
        "|sambuk|boom dhow|trabaccolo|bragozzo|tartana|navicello|gozzo|llaut|chebec|prahu|"
        "herring drifter|pilchard driver|cod smack|mussel boat|eel boat|salmon coble|sprat boat|"
        "kipper boat|wine ship|tobacco ship|cotton ship|wool ship|silk ship|tea ship|coffee ship|"
        "marble ship|granite sloop|slate ketch|brick barge|timber barque|stone barge|corn barge|"
        "flour barge|malt barge|pilgrim ship|convict ship|prison ship|dispatch boat|picket boat|"
        "guard boat|harbour boat|river boat|canal boat|narrowboat|danish jagt|norwegian jakt|"
        "swedish brig|baltic galeas|galeas|breton thonier|thonier|basque chalupa|chalupa|"
        "portuguese caravel|spanish galleon|venetian galley|genoese carrack|hanseatic cog|"
        "flemish hulk|irish hooker|scottish fifie|welsh smack|channel pilot cutter|"
        "biscay tunny boat|aegean caique|levantine polacre|polacre|maltese speronara|speronara|"
        "sicilian tartane|neapolitan felucca|arab dhow|omani baghlah|malay prau|prau|proa|"
        "bengal patela|patela|longship|viking longship|drakkar|karve|faering|snekkja|byrding|"
        "birlinn|nyvaig|knarr|busse|crayer|dromon|hulc|galiot|barca|balener|fusta|marsiliana|"
        "saettia|pinco|mistico|bombard|sambuq|ghanjah|baggala|batil|zaruq|mtepe|jahazi|ngalawa|"
        "pinisi|lorcha|sampan|wangkang|kolek|perahu|vinta|balangay|jong|fishing lugger|"
        "crabbing skiff|sponger|bugalet|chasse-maree|sinagot|lougre|gabare|chaland|tjalk|botter|"
        "hoogaars|schokker|pluut|aak|bolschip|smalschip|kofschip|galjoot|damloper|zeeschouw|"
        "lemsteraak|tjotter|praam|statenjacht|buiscarveel",
        "wooden|single-masted|square-rigged|two-sailed|dark-hulled|tall-masted|one-masted|"
        "broad-hulled|canvas-rigged|timber|flag-topped|deep-hulled|round-bellied|high-sided|"
        "full-sailed|pennanted|sturdy|seagoing|ocean-going|heavy-timbered|clinker-built|"
        "carvel-built|bluff-bowed|broad-beamed|flat-bottomed|beamy|trim|shipshape|seaworthy|"
        "sea-worn|storm-tossed|old-fashioned|three-decked|lumbering|stately|majestic|graceful|"
        "tubby|rakish|square-sailed|pot-bellied|flag-flying|hatched|shaded|ink-dark|sail-laden|"
        "weatherbeaten|salt-stained|tar-black|oaken|teak-built|shallow-draught|high-pooped"
        "|low-waisted|narrow-beamed|fine-lined|fast-looking|handy|nimble|workaday|humble-looking"
        "|hard-working|doughty|gallant|plucky|oak-ribbed|pine-masted|hemp-rigged|rope-rigged|"
        "tarred-rigged|caulked|barnacled|weed-hung|sea-stained|spray-soaked|wave-washed|"
        "salt-rimed|sun-bleached|rust-streaked|patched-sailed|well-trimmed|yare|lissom|weatherly|"
        "stiff-sailed|close-winded|leewardly|sluggish|swift-looking|sleek-hulled|snub-nosed|"
        "round-sterned|square-sterned|transom-sterned|double-ended|lapstrake|flush-decked|"
        "high-prowed|beaked",
        (
            _Part(
                "a mast|a single mast|one mast|a tall mast|its mast|a mainmast|a spar|a pole mast|"
                "a wooden mast|a lone mast|a stout mast",
                "tall|slender|straight|thin|upright|lone|central|bare|plain|pole-like|sturdy|"
                "stiff|vertical|towering|skinny|stout|raked|unstayed|thick",
            ),
            _Part(
                "two sails|its sails|square sails|full sails|hatched sails|two square sails|"
                "canvas|sheets of canvas|a pair of sails|stacked sails|a topsail and a mainsail|"
                "a mainsail|a topsail|sailcloth|two courses|broad sails",
                "billowing|set|spread|square|swelling|taut|wind-filled|shaded|hatched|broad|"
                "full|bellied|unfurled|stretched|lined|ruled|rippling|filled|puffed|straining|"
                "sagging|flapping|crisp|drawing|pale|tidy|patched|pulling",
            ),
            _Part(
                "a pennant|a flag|a pennon|a streamer|a banner|an ensign|a burgee|a little flag|"
                "a masthead flag|a dark pennant|a swallowtail flag|a wind vane",
                "dark|black|small|tiny|fluttering|solid|triangular|inked|streaming|pointed|"
                "flying|wind-blown|narrow|flapping|snapping|stiff|jaunty|proud|waving",
            ),
            _Part(
                "a dark hull|a hull|a heavy hull|a cross-hatched hull|a black hull|a deep hull|"
                "a keel|a rounded hull|a curved hull|a broad hull|a tarred hull|timbers|a bow|"
                "a high stern|a low waist",
                "dark|cross-hatched|heavy|black|shadowed|curved|deep|rounded|stout|shaded|"
                "sturdy|tapering|inky|sweeping|bulging|boat-shaped|densely hatched|tarred|"
                "planked|massive|blunt|squat|swelling",
            ),
        ),
        "sailing|riding|floating|resting|lying|moored|anchored|drifting|standing|cruising|"
        "gliding|waiting|heeling|setting out|under sail|at anchor|becalmed|making way|"
        "running before the wind|beating upwind|tacking|coasting|bobbing|rocking|idling|"
        "hove to|putting out|heading out|pitching|rolling|sitting|parked|tied up|beached|"
        "swinging at her mooring|lying to|standing off|running free|reaching|close-hauled"
        "|ghosting along|wallowing|dawdling|lolling",
    ),
    "tower": _Kind(
        "tower|watchtower|turret|keep|castle tower|stone tower|lookout tower|donjon|bastion|"
        "fortified tower|defensive tower|martello tower|pele|round tower|guard tower|"
        "battlemented tower|belvedere|citadel|peel|bell tower|clock tower|"
        "signal tower|gate tower|wall tower|corner tower|fire tower|square tower|brick tower|"
        "barbican|campanile|minaret|folly|beacon tower|observation tower|defence tower|"
        "castle keep|stronghold|redoubt|blockhouse|gatehouse|belfry tower|lighthouse|"
        "church tower|water tower|shot tower|look-out turret|mural tower|flanking tower|"
        "drum tower|tower keep|shell keep|bergfried|torre|broch|nuraghe|round keep|"
        "postern tower|signal turret|bartizan|watch turret|pepperpot turret|"
        "sea tower|coastal tower|tollgate tower|prison tower|treasury tower|donjon keep|"
        "curtain tower|angle tower|bastle|fortalice|peel tower"
        "|pele tower|solar tower|chapel tower|toll tower|harbour tower|river tower|bridge tower"
        "|mill tower|stair tower|belltower|lantern tower|semaphore tower|telegraph tower"
        "|coastguard tower|saracen tower|moorish tower|genoese tower"
        "|venetian tower|tudor tower|plantagenet tower|rhenish tower|italianate tower"
        "|crusader tower|templar tower|hill tower|crag tower|cliff tower|hermit's tower"
        "|wizard's tower|maiden tower|keeper's tower|pigeon tower|dovecote tower|prospect tower"
        "|eyecatcher|gazebo tower|torreon|atalaya|castillo tower|burgturm|wehrturm|bergfrit"
        "|donjon tower|campanile tower|norman keep|border peel|irish round tower|pisan tower|"
        "tuscan tower|florentine tower|sienese tower|lombard tower|bavarian tower|swabian tower|"
        "frankish tower|byzantine tower|armenian tower|catalan tower|aragonese tower|"
        "castilian tower|flint tower|granite tower|sandstone tower|limestone tower|basalt tower|"
        "rubble tower|chalk tower|ironstone tower|ragstone tower|clunch tower|powder tower|"
        "gunpowder tower|armoury tower|debtors' tower|executioner's tower|archers' tower|"
        "bowmen's tower|gunners' tower|sentry tower|sentinel tower|warder's tower|"
        "constable's tower|governor's tower|lord's tower|lady's tower|queen's tower|king's tower|"
        "bishop's tower|abbot's tower|nun's tower|whinstone tower|freestone keep|travertine tower|"
        "tufa tower|dolerite tower|greystone tower|redstone tower|brownstone tower|"
        "fieldstone tower|moorstone tower|syenite tower|sarsen tower|carrstone tower|"
        "purbeck tower|caen-stone tower|baron's tower|earl's tower|duke's tower|count's tower|"
        "margrave's tower|laird's tower|chieftain's tower|thane's tower|sheriff's tower|"
        "jailer's tower|gaoler's tower|falconer's tower|huntsman's tower|astronomer's tower|"
        "alchemist's tower|scholar's tower|recluse's tower|princess's tower|prisoner's tower|"
        "hostage tower|ransom tower|plague tower|witch's tower|wind tower|star tower|"
        "curfew tower|watchpost tower|rectangular keep|quatrefoil keep|cruciform keep|"
        "octagonal keep|hexagonal tower|beaked tower|prow tower|rampart tower|curtain turret|"
        "angle turret|stair turret|bell turret|corbelled turret|echauguette|guerite|garita|"
        "luginsland|pulverturm|hexenturm|diebsturm|wasserturm|glockenturm|torre mozza|torrazzo|"
        "torrione|mastio|rocca tower|cassero|kula|pyrgos|koule|qasr tower|burj|kasbah tower|"
        "ksar tower|agadir tower|tighremt",
        "crenellated|battlemented|stone|square|fortified|castellated|narrow|medieval|masonry|"
        "windowed|solid|sturdy|defensive|squat-topped|flat-topped|thick-walled|grim|stout|"
        "brick|ancient|weathered|forbidding|lonely|isolated|impregnable|rugged|gaunt|austere|"
        "sombre|severe|four-square|slit-windowed|loopholed|norman|gothic|military|martial|"
        "watchful|proud|storied|many-storeyed|stern|blunt|hatched|shaded|towering|embattled|"
        "machicolated|corbelled|rubble-built|ashlar-faced|moss-grown|ivy-clad"
        "|sun-bleached|rain-streaked|lichened|time-blackened|war-scarred|ruinous|roofless"
        "|unassailable|beetling|dour|glowering|craggy-walled|keep-like|loopholed-walled|"
        "arrow-slitted|iron-gated|portcullised|drum-shaped|cylindrical|polygonal|hexagonal|"
        "octagonal-walled|tapered|batter-walled|plinthed|buttress-footed|parapeted|garret-topped|"
        "corbel-crowned|conical-roofed|pointed-roofed|lead-roofed|slate-capped|sheer-walled|"
        "blind-walled|few-windowed|sullen|bristling|menacing|threatening|defiant|unyielding|"
        "obdurate|implacable|steely|flinty|granitic",
        (
            _Part(
                "battlements|crenellations|a crenellated top|merlons|three merlons|"
                "a battlemented parapet|a parapet|a notched top|ramparts|a crenellated crown|"
                "a jagged top|a corbelled top|machicolations",
                "crenellated|notched|square|squared|toothed|jagged|dark|cross-hatched|heavy|"
                "blocky|stepped|crowning|protruding|projecting|overhanging|chunky|broad|ragged",
            ),
            _Part(
                "two windows|narrow windows|two dark windows|arrow slits|loopholes|window slits|"
                "small windows|two square windows|two black windows|openings|embrasures|"
                "two small openings|slits",
                "dark|black|square|small|narrow|deep|tiny|inked|stacked|paired|shuttered|"
                "unlit|gaping|recessed|mean|blank|solitary|watchful|hollow",
            ),
            _Part(
                "an arched door|an arched doorway|a doorway|a door|a dark doorway|an entrance|"
                "a round-topped door|a gateway|a portal|a postern|a low arch|a sally port",
                "arched|dark|black|rounded|small|solid|low|narrow|open|deep|vaulted|shadowy|"
                "heavy|gloomy|cavernous|squat",
            ),
            _Part(
                "a shaded side|one shaded side|a darker side|shaded walls|stone walls|walls|"
                "a hatched wall|a cross-hatched flank|ashlar walls|rough masonry|a sloping base|"
                "a battered base|buttressed walls",
                "shaded|darker|cross-hatched|shadowed|hatched|tapering|thick|sheer|rough|"
                "sloping|battered|plain|massive|windowless|bare|blank|stony|grey",
            ),
        ),
        "standing|rising|guarding|keeping watch|looming|stationed|posted|overlooking the ground|"
        "soaring|jutting up|sitting|presiding|brooding|standing sentinel|standing guard|"
        "watching|dominating|stretching up|climbing|perched|squatting|glowering|frowning|"
        "holding its ground|thrusting upward|reaching skyward",
    ),
    "house": _Kind(
        "house|cottage|dwelling|home|farmhouse|homestead|cabin|hut|lodge|residence|abode|"
        "croft|grange|villa|townhouse|chalet|bungalow|shack|hovel|manor|rectory|parsonage|"
        "vicarage|cot|steading|country house|little house|family home|farmstead|shanty|"
        "cottage house|tollhouse|schoolhouse|almshouse|farm cottage|"
        "labourer's cottage|weaver's cottage|fisherman's cottage|keeper's lodge|"
        "manor house|hall|mansion|dower house|"
        "ranch house|log cabin|hunting lodge|summerhouse|cottage home|"
        "gabled house|stone house|brick house|timber house|two-storey house|terraced house|"
        "semi-detached house|detached house|bothy|shieling|cottar's house|"
        "longhouse|blackhouse|cruck house|wealden house|hall house|yeoman's house|"
        "miller's house|ferryman's cottage|shepherd's hut|woodman's cottage|"
        "toll cottage|estate cottage|tied cottage|cottage orn\u00e9|saltbox|"
        "cape cod|clapboard house|farmer's house|"
        "gingerbread house|doll's house|tiny house|starter home|holiday cottage|crofter's cottage|"
        "lockkeeper's cottage|gamekeeper's lodge|forester's lodge"
        "|gatekeeper's lodge|lodge house|gate lodge|verger's cottage|sexton's house"
        "|smithy cottage|wheelwright's house|cooper's house|chandler's house|merchant's house"
        "|vintner's house|tanner's house|dyer's cottage|thatcher's cottage|potter's cottage"
        "|cobbler's cottage|clergy house|curate's house|almoner's house|reeve's house"
        "|bailiff's house|steward's house|grieve's house|manse|presbytery|deanery|priest's house"
        "|pastor's house|glebe house|coaching inn|roadhouse|alehouse|inn|tavern|hostelry"
        "|posthouse|farmhouse inn|outhouse|cowherd's hut|swineherd's hut|charcoal burner's hut"
        "|bothie|cabin home|saltbox house|homestead house|sod house|adobe house|chattel house"
        "|hideaway|retreat|dacha|izba|hacienda|casita|finca|masseria|cottage croft|byre-dwelling"
        "|laithe house|bastide|flint cottage|granite cottage|sandstone cottage|limestone cottage|"
        "cob cottage|chalk cottage|clay cottage|turf house|wattle hut|slate cottage|"
        "ironstone cottage|rubble cottage|pebble cottage|clapboard cottage|baker's cottage|"
        "butcher's house|spinner's cottage|carter's cottage|ploughman's cottage|drover's cottage|"
        "carpenter's house|joiner's cottage|mason's cottage|glazier's house|saddler's house|"
        "farrier's cottage|blacksmith's cottage|tailor's cottage|schoolmaster's house|"
        "doctor's house|apothecary's house|notary's house|lawyer's house|widow's cottage|"
        "spinster's cottage|hermit's hut|poet's cottage|painter's cottage|sailor's cottage|"
        "pilot's house|coastguard cottage|boatman's cottage|bargee's cottage|lengthsman's cottage|"
        "quarryman's cottage|miner's cottage|navvy's hut|railwayman's cottage|signalman's cottage|"
        "stationmaster's house|postmaster's house|innkeeper's house|brewer's house|"
        "maltster's house|croglofft cottage|tyddyn|bwthyn|cotswold cottage|devon longhouse|"
        "dartmoor longhouse|lakeland cottage|pennine cottage|fenland cottage|chiltern cottage|"
        "mendip cottage|essex cottage|dorset cottage|somerset cottage|wiltshire cottage|"
        "normandy cottage|alsatian house|swiss chalet|tyrolean chalet|black forest house|"
        "danish farmhouse|finnish cabin|russian izba|ukrainian hata|hata|polish chata|chata|"
        "hungarian farmhouse|romanian cottage|scottish croft|irish cabin|welsh cottage|"
        "manx cottage|orkney croft|hebridean blackhouse|donegal cottage|kerry cottage",
        "gabled|pitched-roof|two-windowed|chimneyed|simple|square|pointed-roof|steep-roofed|"
        "brick|stone|timber|plain|modest|rustic|tidy|neat|country|rural|thatched|tiled|"
        "slate-roofed|homely|snug|humble|symmetrical|dark-roofed|cosy|welcoming|sturdy|"
        "squat|solid|trim|boxy|lonely|isolated|detached|old|ancient|crooked|lopsided|"
        "storybook|doll's|toy-like|two-storey|single-storey|low-slung|whitewashed|"
        "timber-framed|half-timbered|stuccoed|weatherboarded|shuttered|georgian|tudor|"
        "elizabethan|victorian|vernacular|four-square|pebble-dashed|rendered|limewashed|roughcast|"
        "flint-built|cob-walled|wattle-and-daub"
        "|clapboarded|shingled|gable-fronted|hip-roofed|mansard-roofed|dormered|bay-windowed"
        "|ivy-covered|rose-covered|lived-in|well-kept|careworn|tumbledown|ramshackle|dilapidated"
        "|forlorn|low-eaved|deep-eaved|broad-eaved|steep-gabled|twin-gabled|cross-gabled|"
        "saddle-roofed|catslide-roofed|chimney-stacked|tall-chimneyed|smoke-blackened|"
        "sash-windowed|small-paned|leaded-lighted|green-doored|porched|stoop-fronted|step-fronted|"
        "flat-fronted|bow-fronted|plain-fronted|double-windowed|four-windowed|brick-nogged|"
        "close-studded|jettied|overhanging|weather-tiled|tile-hung|pargeted|colour-washed|"
        "ochre-washed|pink-washed|cheerless|homelike|hospitable",
        (
            _Part(
                "a chimney|a tall chimney|a chimney stack|one chimney|a single chimney|"
                "a brick chimney|a stack|a flue|a chimney on one side|a chimneypot",
                "tall|square|dark|cross-hatched|narrow|single|brick|smokeless|stubby|upright|"
                "off-centre|slender|squat|sturdy|lopsided|thin|lone",
            ),
            _Part(
                "a pitched roof|a steep roof|a gabled roof|a dark roof|a pointed roof|a roof|"
                "a triangular roof|a cross-hatched roof|a gable|a peaked roof|eaves|"
                "a slate roof|a thatched roof|a tiled roof|a roof like a hat",
                "pitched|steep|dark|cross-hatched|pointed|triangular|gabled|sloping|sharp|"
                "overhanging|heavy|slanting|angular|shadowed|tall|deep|sagging|broad",
            ),
            _Part(
                "a door|a front door|a dark door|a black door|a doorway|an entrance|"
                "a central door|a narrow door|a plank door|a stable door",
                "dark|black|central|narrow|tall|solid|plain|inked|simple|closed|shut|"
                "sturdy|wooden|modest|low|stout",
            ),
            _Part(
                "two windows|two dark windows|a window either side|a pair of windows|"
                "square windows|small windows|two black windows|windows on each side|"
                "casement windows|sash windows|two square windows|leaded windows",
                "dark|black|square|small|matching|symmetrical|paired|lit|unlit|shuttered|"
                "curtained|flanking|inked|deep-set|blank|neat|twin|tiny|staring",
            ),
        ),
        "standing|sitting|nestled|set|resting|perched|tucked away|placed|settled|huddled|"
        "built|planted|lying|facing out|hunkered down|squatting|sheltering|waiting|"
        "snuggled|dozing|slumbering|keeping to itself|looking out|wedged",
    ),
    "tree": _Kind(
        "tree|oak|oak tree|elm|beech|chestnut tree|linden|sycamore|maple|walnut tree|"
        "plane tree|deciduous tree|leafy tree|shade tree|hornbeam|alder|poplar|willow|"
        "apple tree|pear tree|fruit tree|broadleaf|lime tree|birch|hazel|aspen|laurel|"
        "cherry tree|mulberry|yew|orchard tree|holm oak|cork oak|sweet chestnut|"
        "copper beech|english oak|field maple|wych elm|white willow|crack willow|"
        "black poplar|silver birch|whitebeam|rowan|hawthorn|blackthorn|elder|holly|"
        "crab apple|plum tree|quince|medlar|fig tree|olive tree|walnut|chestnut|"
        "box elder|tulip tree|catalpa|acacia|locust tree|hickory|cottonwood|"
        "buttonwood|banyan|shrub|bush|sapling|specimen tree|parkland tree|great tree|"
        "pollard|pollarded oak|standard tree|sessile oak|turkey oak|red oak|pin oak|"
        "sugar maple|norway maple|red maple|english elm|dutch elm|field elm|"
        "grey poplar|white poplar|lombardy poplar|goat willow|bay willow|"
        "downy birch|river birch|grey alder|black alder|common lime|small-leaved lime|"
        "service tree|wild cherry|bird cherry|damson tree|greengage tree|"
        "cob tree|filbert|sweet gum|liquidambar|tupelo|ironwood|basswood|"
        "buckeye|persimmon|pawpaw|sassafras|dogwood|redbud|hackberry|"
        "orange tree|lemon tree|carob tree|holm tree|evergreen oak|chinquapin|hop hornbeam|"
        "black walnut|butternut|pecan|bitternut|shagbark|pignut"
        "|white oak|bur oak|post oak|scarlet oak|chestnut oak|water oak|willow oak|laurel oak"
        "|live oak|blackjack oak|hornbeam maple|silver maple|box maple|paperbark maple"
        "|hedge maple|sycamore maple|wych hazel|witch hazel|corkscrew willow|weeping willow"
        "|osier|sallow|purple willow|balsam poplar|trembling aspen|quaking aspen|paper birch"
        "|yellow birch|sweet birch|white elm|slippery elm|rock elm|cedar elm|american beech"
        "|oriental plane|london plane|horse chestnut|judas tree|strawberry tree"
        "|service berry|serviceberry|spindle tree|wayfaring tree|buckthorn"
        "|alder buckthorn|sea buckthorn|myrtle|tamarisk|pistachio|terebinth|almond tree"
        "|apricot tree|peach tree|nectarine tree|pomegranate|loquat|mango tree|jackfruit"
        "|breadfruit|baobab|kapok|ceiba|tamarind|neem|peepul|bodhi tree|sal tree|teak"
        "|mahogany tree|rosewood|ebony tree|sandalwood tree|katsura|zelkova|ginkgo|paulownia|"
        "magnolia|camellia tree|sorbus|amelanchier|hop tree|wingnut|hazel tree|filbert tree|"
        "cobnut|hickory tree|mockernut|sweetgum|blackgum|sourwood|yellowwood|silverbell|snowbell|"
        "fringe tree|smoke tree|golden rain tree|pagoda tree|honey locust|coffeetree|osage orange|"
        "chinaberry|empress tree|mimosa tree|silk tree|jacaranda|flame tree|poinciana|cassia|"
        "mastic tree|lentisk|arbutus|oleaster|jujube|date plum|lotus tree|nettle tree|celtis|"
        "dove tree|handkerchief tree|ash tree|ash|mountain ash|manna ash|narrow-leaved ash|"
        "elder tree|box tree|privet|wild service|true service|chequer tree|checker tree|"
        "black mulberry|white mulberry|paper mulberry|sycamore fig|valonia oak|kermes oak|"
        "pyrenean oak|hungarian oak|lebanon oak|algerian oak|daimyo oak|sawtooth oak|shingle oak|"
        "overcup oak|swamp oak|bluejack oak|emory oak|gambel oak|garry oak|oregon oak|valley oak|"
        "canyon oak|coast live oak|blue oak|engelmann oak|basket oak|cherrybark oak|nuttall oak|"
        "shumard oak|texas oak|chinkapin oak|durand oak|bastard oak|lucombe oak|fulham oak|"
        "trident maple|amur maple|tatarian maple|montpellier maple|cretan maple|italian maple|"
        "snakebark maple|striped maple|mountain maple|bigleaf maple|vine maple|chalk maple|"
        "florida maple|bigtooth maple|caucasian lime|silver lime|crimean lime|american lime|"
        "weeping lime|broad-leaved lime|wych-elm|smooth-leaved elm|cornish elm|jersey elm|"
        "plot elm|huntingdon elm|white ash|green ash|black ash|blue ash|pumpkin ash|oregon ash|"
        "velvet ash",
        "leafy|bushy|round-crowned|full|spreading|broad|dense|shady|billowing|rounded|"
        "thick|lush|verdant|bushy-topped|mature|healthy|domed|cloud-like|puffy|"
        "heavily foliaged|well-grown|solitary|lonely|lone|venerable|old|ancient|stately|"
        "sturdy|handsome|fine|bountiful|summery|leaf-laden|top-heavy|mushroom-shaped|"
        "lollipop-shaped|ball-shaped|broad-crowned|short-trunked|thick-trunked|"
        "dark-trunked|deep-shaded|cross-hatched|shaded|hatched|luxuriant|abundant|"
        "flourishing|robust|wide-spreading|umbrella-like|cumulous|full-leaved|thick-leaved|"
        "leaf-crowned|billowy|fleecy|woolly-headed|cauliflower-like"
        "|broccoli-like|bulbous|sturdy-limbed|deep-rooted|heavy-headed|shade-giving|sheltering"
        "|green-crowned|midsummer|june-leafed|august|well-rounded|cushiony|deep-crowned|"
        "dome-headed|ball-headed|globe-crowned|round-headed|oval-crowned|egg-shaped|pear-shaped|"
        "onion-shaped|clumped|cloud-pruned|topiary-like|leaf-heavy|shade-casting|foliose|frondose|"
        "leafful|bowery|umbrageous|shadowy-crowned|heavy-crowned|fat-crowned|plump|portly|rotund|"
        "corpulent|well-fed|bosomy|buxom|voluptuous|rounded-out|swollen|gravid|overflowing|"
        "brimming",
        (
            _Part(
                "a dark trunk|a trunk|a thick trunk|a straight trunk|a black trunk|a stout trunk|"
                "a short trunk|a bole|a solid trunk|a tapering trunk|a stem|a sturdy trunk|"
                "a flared base|a stubby trunk",
                "dark|black|thick|straight|stout|short|solid|tapering|sturdy|inked|firm|"
                "upright|gnarled|heavy|sturdy|knotted|flaring|massive|plain",
            ),
            _Part(
                "a round crown|a crown|a canopy|foliage|leaves|a full canopy|a rounded crown|"
                "a mass of leaves|a leafy crown|thick foliage|a head of leaves|leafage|"
                "three billows of leaves|clustered foliage|a domed crown|a cloud of leaves|"
                "a great ball of leaves|greenery|a leafy head",
                "round|rounded|full|dense|thick|cross-hatched|dark|billowing|lobed|bushy|"
                "cloudlike|heavy|lush|spreading|three-lobed|clumped|massed|puffed|bulging|"
                "tufted|knobbly|lumpy|scalloped|wavy|rich|luxuriant",
            ),
        ),
        "standing|growing|rising|spreading|planted|rooted|thriving|flourishing|casting shade|"
        "towering up|reaching up|sprouting|branching out|swaying|leaning|stretching|"
        "spreading its branches|keeping company|sheltering|presiding|soaring|waving",
    ),
    "mountain": _Kind(
        "mountain|peak|hill|mount|summit|alp|crag|massif|pinnacle|fell|tor|ben|knoll|"
        "hillock|mound|butte|spur|pike|highland peak|rocky peak|snowy peak|mountaintop|"
        "height|eminence|bluff|promontory|outcrop|mountain peak|snow peak|"
        "hilltop|cone|fjeld|sierra|barrow|drumlin|headland|escarpment|scarp|col|alp peak|"
        "ice peak|snow mountain|rocky summit|snowy summit|granite peak|limestone hill|"
        "aiguille|needle|nunatak|sugarloaf|dent|ben peak|munro|corbett|"
        "inselberg|kopje|monadnock|mesa|lone peak|snowcapped summit|"
        "glacier peak|alpine summit|hogback|whaleback|beacon hill|rock|peaklet|hill peak|"
        "matterhorn|spitz|pic|pico|puy|monte|cerro|arete peak|pyramid peak|fin|fang|spire peak"
        "|gendarme|sentinel peak|snowcap|firn peak|neve summit|moor|brae"
        "|knott|rigg|beinn|sgurr|stob|meall|carn|cnoc|mynydd|moel|berg|sandstone peak|basalt peak|"
        "gneiss peak|schist peak|porphyry peak|dolomite peak|marble peak|quartzite peak|"
        "shale hill|slate peak|chalk hill|flint hill|heather hill|bracken hill|gorse hill|"
        "scree peak|boulder peak|rime peak|hoarfrost peak|icefall peak|cornice peak|ridge peak|"
        "saddle peak|twin peak|double peak|north peak|south peak|east peak|west peak|"
        "shepherd's hill|watch hill|gallows hill|signal hill|pilgrim hill|holy mountain|"
        "sacred mountain|fairy hill|giant's hill|cloud peak|thunder peak|haystack|sugar-loaf|"
        "sugar cone|pyramid|pinnacle peak|summit cone|peak cone|dome peak|"
        "top peak|knap|nab|scaur|pike peak|"
        "headland peak",
        "snow-capped|snowy|pointed|triangular|jagged|steep|rocky|lofty|sharp|conical|"
        "craggy|single-peaked|white-topped|snow-topped|rugged|alpine|stony|bare|sheer|"
        "pyramidal|majestic|hulking|frosted|icy|glacial|windswept|barren|desolate|wild|"
        "remote|forbidding|imposing|sky-piercing|cloud-capped|lonely|solitary|brooding|"
        "symmetrical|lopsided|two-toned|half-shaded|half-lit|steep-sided|knife-edged|"
        "wind-scoured|weathered|granite|limestone|treeless|grassy|snowbound|snow-clad|ice-capped|"
        "ice-crowned|frost-bitten|hoary|grizzled|scarred"
        "|fissured|riven|cloven|serrated|saw-toothed|spiky|stark|austere|aloof|unclimbed|virgin"
        "|trackless|pathless|glaciated|corrie-scooped|cirque-bitten|scree-skirted|ravine-cut|"
        "gully-scored|ridge-backed|twin-horned|saddle-backed|cloud-wreathed|mist-wrapped|"
        "snow-streaked|snow-dusted|ice-sheathed|rime-coated|frost-rimmed|white-maned|white-headed|"
        "grey-flanked|dark-flanked|steep-faced|north-faced|sun-facing|shadow-sided|light-catching|"
        "blazing-white|alabaster-topped|sugar-dusted|icing-topped|meringue-like|wedding-cake|"
        "pyramid-like|tent-like|spearhead|arrowhead",
        (
            _Part(
                "a snow cap|a snowy cap|a cap of snow|snow on top|a white crown|a snowy tip|"
                "a white crest|a dusting of snow|snowfields|a glacier|a frosted top|"
                "a white tip|snow on its crest|a snowy crown|a white zigzag of snow",
                "white|bright|jagged|zigzag|pale|clean|snowy|frosty|icy|untouched|blank|"
                "sparkling|notched|ragged|gleaming|crisp|brilliant|fresh|patchy",
            ),
            _Part(
                "a shaded slope|a dark slope|one dark flank|a shadowed flank|a hatched side|"
                "a cross-hatched flank|steep slopes|a shaded side|a lit side and a dark side|"
                "a sunlit flank|a dark shoulder|a steep drop|scree slopes|two sides",
                "shaded|dark|cross-hatched|shadowed|steep|hatched|gloomy|sheer|darker|"
                "long|sweeping|plunging|sloping|rugged|stony|bare|precipitous|craggy",
            ),
        ),
        "rising|looming|soaring|standing|towering up|climbing|thrusting up|jutting up|"
        "dominating the view|filling the sky|rearing up|sloping up|brooding|"
        "lifting its head|piercing the sky|sitting|squatting|slumbering|watching|"
        "presiding|glowering|sprawling|heaving up|swelling up",
    ),
    "bridge": _Kind(
        "bridge|stone bridge|arched bridge|viaduct|aqueduct|footbridge|road bridge|"
        "three-arched bridge|masonry bridge|river bridge|packhorse bridge|railway viaduct|"
        "causeway|overpass|canal bridge|humpback bridge|flyover|stone viaduct|"
        "arch bridge|brick bridge|toll bridge|county bridge|town bridge|roman bridge|"
        "river crossing bridge|footway|carriageway bridge|"
        "arcade bridge|clapper bridge|ford bridge|mill bridge|estate bridge|park bridge|"
        "garden bridge|pont|span bridge|road viaduct|bow bridge|pack bridge|"
        "turnpike bridge|parish bridge|abbey bridge|chapel bridge|pilgrim bridge|"
        "hump bridge|camel-back bridge|cart bridge|drovers' bridge|coach bridge|"
        "village bridge|weir bridge|lock bridge|towpath bridge|accommodation bridge|"
        "arcaded bridge|stone span|masonry viaduct|brick viaduct|water bridge|ashlar bridge|"
        "granite bridge|rubble bridge|gothic bridge|palladian bridge"
        "|ornamental bridge|folly bridge|monastic bridge|manorial bridge|castle bridge"
        "|moat bridge|skew bridge|ribbed bridge|keystone bridge|segmental bridge"
        "|elliptical bridge|navigation bridge|wharf bridge|harbour bridge|dock bridge"
        "|quay bridge|railway bridge|tramway bridge|mineral railway viaduct|colliery viaduct"
        "|mill viaduct|valley viaduct|gorge bridge|ravine bridge|burn bridge|beck bridge"
        "|brook bridge|stream bridge|marsh bridge|causey|causeway bridge|dyke bridge"
        "|sluice bridge|devil's bridge|lovers' bridge|kissing bridge|wishing bridge|ponte"
        "|pons|puente|brug|acueducto|aqueduct bridge|leat bridge|conduit bridge|sandstone bridge|"
        "limestone bridge|flint bridge|ragstone bridge|gritstone bridge|millstone bridge|"
        "dressed-stone bridge|cobbled bridge|pointed-arch bridge|round-arch bridge|monks' bridge|"
        "pilgrims' bridge|king's bridge|queen's bridge|bishop's bridge|abbot's bridge|"
        "mayor's bridge|market bridge|fair bridge|cattle bridge|sheep bridge|wagon bridge|"
        "coaching bridge|highway bridge|drove road bridge|salt road bridge|wool bridge|"
        "canal aqueduct|river aqueduct|roman aqueduct|arcaded aqueduct|flood bridge|flood arches|"
        "whinstone bridge|freestone bridge|travertine bridge|tufa bridge|greystone bridge|"
        "redstone bridge|fieldstone bridge|moorstone bridge|sarsen bridge|culvert bridge|"
        "horseshoe bridge|rainbow bridge|hog's back bridge|ogee bridge|lancet bridge|"
        "pointed bridge|dales bridge|pennine bridge|cotswold bridge|dartmoor bridge|"
        "fenland bridge|yorkshire bridge|welsh bridge|scottish bridge|irish bridge|french bridge|"
        "italian bridge|spanish bridge|flemish bridge|ashlar viaduct|rubble viaduct|"
        "arched viaduct|tall viaduct|long viaduct|curved viaduct|skew viaduct|tramroad viaduct|"
        "turnpike viaduct|arched causeway|causeway arches|arched footway|bridle bridge|"
        "bridleway bridge|ox bridge|miners' bridge|"
        "quarry bridge|saxon bridge|norman bridge|plantagenet bridge|"
        "tudor bridge|stuart bridge|hanoverian bridge|regency bridge|victorian bridge|"
        "edwardian bridge",
        "arched|three-arched|stone|low|long|flat-topped|masonry|solid|sturdy|wide|old|"
        "heavy|broad|level|hatched|sturdy-looking|roman|classical|brick|multi-arched|"
        "arcaded|straight|ancient|venerable|graceful|elegant|handsome|squat|stout|"
        "weathered|time-worn|mossy|picturesque|rustic|rural|georgian|medieval|"
        "symmetrical|balanced|even|regular|rhythmic|stately|dignified|imposing|"
        "well-built|solid-looking|stolid|lichen-covered|ivy-hung|moss-grown|time-honoured|"
        "long-lived|unbudging|steadfast"
        "|enduring|patient|workmanlike|unpretentious|unadorned|austere|plain-faced|sober|severe"
        "|triple-arched|tri-arched|tripartite|round-arched|semicircular-arched|barrel-vaulted|"
        "rib-vaulted|keystoned|voussoired|rusticated-piered|cutwater-footed|parapeted|balustraded|"
        "coped|corbelled|string-coursed|cambered|humped|level-decked|long-parapeted|low-parapeted|"
        "cobbled-decked|flagged|paved|grass-grown|weed-tufted|fern-hung|water-stained|"
        "flood-scarred|river-worn|span-proud|sure-footed|foursquare|trusty|faithful-looking|"
        "dependable-looking|companionable|neighbourly",
        (
            _Part(
                "three archways|three round openings|arched openings|three openings|three vaults|"
                "three semicircular openings|a row of openings|an arcade|three bays|"
                "three equal openings|round openings|three holes|three tunnels",
                "round|rounded|semicircular|open|blank|white|even|regular|matching|deep|"
                "graceful|wide|curving|equal|identical|tall|gaping|bright|paper-white",
            ),
            _Part(
                "a parapet|a dark parapet|a roadway|a deck|a dark band along the top|a top rail|"
                "a balustrade|a coping|a walkway|a cross-hatched parapet|a railing|"
                "a string course|a heavy cornice",
                "dark|cross-hatched|flat|straight|level|heavy|solid|long|thin|continuous|"
                "ruled|even|narrow|shadowed|unbroken|sturdy|low|plain",
            ),
            _Part(
                "stone piers|piers|pillars|supports|three piers|stout piers|buttresses|"
                "hatched stonework|masonry|hatched walls|cutwaters|abutments|spandrels",
                "hatched|stout|thick|sturdy|solid|squat|square|heavy|rough|shaded|lined|"
                "weathered|massive|chunky|blocky|rusticated|dressed",
            ),
        ),
        "stretching|spanning the ground|standing|reaching across|lying|extending|"
        "running|arching|leaping across|striding across|bridging the gap|sprawling|"
        "resting|marching across|straddling the ground|carrying a road|linking the banks|"
        "sitting|stepping across|vaulting over the ground",
    ),
    "church": _Kind(
        "church|chapel|little church|parish church|kirk|abbey|priory|minster|cathedral|"
        "basilica|oratory|country church|village church|steepled church|"
        "sanctuary|temple|shrine|chantry|friary|"
        "convent|monastery|cloister|hermitage|preceptory|collegiate church|stone church|"
        "wayside chapel|meeting house chapel|"
        "nonconformist chapel|methodist chapel|baptist chapel|presbyterian kirk|"
        "gothic church|romanesque church|norman church|saxon church|spired church|"
        "village chapel|hillside chapel|mission church|parish kirk|tabernacle|bethel|"
        "conventicle|fane|mortuary chapel|chapel royal|lady chapel|"
        "mother church|daughter church|oratory chapel|estate chapel|"
        "free church|round church|hall church|stave church|"
        "wool church|marsh church|fen church|moorland chapel|shepherds' chapel|"
        "pilgrim chapel|votive chapel|bridge chapel|sailors' chapel|seamen's chapel|"
        "fishermen's chapel|priory church|abbey church|minster church|proprietary chapel|"
        "chapel-of-ease|quaker meeting house chapel|shaker chapel|moravian chapel"
        "|lutheran church|reformed church|huguenot chapel|calvinist kirk|covenanter kirk"
        "|congregational chapel|unitarian chapel|wesleyan chapel|primitive chapel|bible chapel"
        "|pilgrimage church|kapelle|kirche|dorfkirche|eglise|chapelle|iglesia|ermita|chiesa"
        "|pieve|duomo|kerk|kyrka|kirke|mission chapel|plantation chapel|frontier church"
        "|prairie church|clapboard church|white church|little white chapel|saint's chapel"
        "|martyr's chapel|holy well chapel|hermit's chapel|leper chapel"
        "|hospital chapel|almshouse chapel|guild chapel|chantry chapel|charnel chapel"
        "|cemetery chapel|funerary chapel|tin tabernacle|iron church|mission hall church"
        "|barn church|thatched church|flint church|sandstone church|granite church|timber church|"
        "wooden church|flint chapel|sandstone chapel|granite chapel|timber chapel|tin chapel|"
        "slate chapel|cob chapel|chalk church|whitewashed chapel|perpendicular church|"
        "decorated church|early english church|transitional church|baroque church|rococo church|"
        "neoclassical church|byzantine church|georgian church|victorian church|tudor church|"
        "carolingian chapel|ottonian church|cistercian abbey|benedictine priory|"
        "augustinian priory|franciscan friary|dominican friary|carmelite convent|"
        "premonstratensian abbey|cluniac priory|carthusian priory|gilbertine priory|"
        "whinstone church|freestone church|travertine church|greystone kirk|redstone church|"
        "fieldstone church|sarsen church|puddingstone church|round-towered church|apsidal church|"
        "basilican church|dissenting chapel|independent chapel|particular chapel|strict chapel|"
        "swedenborgian church|catholic church|apostolic church|orthodox church|coptic church|"
        "greek church|russian church|syriac church|maronite church|episcopal church|"
        "episcopalian chapel|evangelical chapel|pentecostal chapel|adventist chapel|"
        "mennonite chapel|amish church|hutterite church|waldensian church|hussite church|"
        "jacobite chapel|nonjuring chapel|recusant chapel|norse church|viking church|"
        "celtic church|culdee church|minster kirk|collegiate kirk|burgh kirk|tron kirk|laigh kirk|"
        "high kirk|auld kirk|wee kirk|free kirk|united kirk|seceder kirk|relief kirk|burgher kirk|"
        "hill chapel|marsh chapel|heath chapel|forest chapel|dale chapel|fell chapel|moor chapel|"
        "cliff chapel|shore chapel|harbour chapel|quay chapel|market chapel|guildhall chapel|"
        "castle chapel|palace chapel|manor chapel|capilla|ermida|kapel|kaplica|"
        "kostel|templom",
        "steepled|spired|gothic|stone|gabled|cross-topped|arched|pointed|religious|holy|"
        "christian|romanesque|lancet-windowed|churchly|peaceful|quiet|rural|small-town|"
        "whitewashed|ecclesiastical|sacred|solemn|pious|devout|hallowed|consecrated|"
        "serene|humble|simple|plain|modest|austere|medieval|norman|anglican|"
        "old-world|historic|venerable|ancient|time-honoured|tranquil|"
        "symmetrical|cruciform|aisleless|single-naved|well-kept|trim|neat|buttressed|pinnacled|"
        "crocketed|traceried|flint-walled|cobbled|weather-beaten"
        "|lichen-spotted|candle-lit|bell-hung|spire-topped|steeple-crowned|heaven-pointing|godly"
        "|blessed|prayerful|contemplative|cloistered|monastic|parochial|provincial|"
        "nave-and-chancel|aisled|transepted|clerestoried|bellcoted|saddleback-towered|"
        "broach-spired|needle-steepled|shingle-spired|lead-spired|copper-spired|weathercocked|"
        "cross-crowned|finialled|gabled-porched|lych-gated|yew-shaded|graveyarded|"
        "headstone-ringed|wall-girt|churchyarded|sanctified|reverent|reverential|worshipful|"
        "beatific|saintly|angelic|heavenly|celestial|hushed|still|silent-looking|prayer-worn|"
        "bell-silent",
        (
            _Part(
                "a steeple|a spire|a pointed spire|a tall steeple|a belfry|a small spire|"
                "a cross on top|a cross|a crucifix on the spire|a pointed belfry|a bell-cote|"
                "a little spire|a short spire|a slender spire|a central spire|a finial",
                "pointed|tall|dark|cross-hatched|slender|sharp|narrow|topped|central|soaring|"
                "needle-like|tapering|steep|lofty|stubby|squat|elegant|plain|thin",
            ),
            _Part(
                "arched windows|three arched windows|lancet windows|round-topped windows|"
                "pointed windows|a row of arched windows|dark windows|two side windows|"
                "tall windows|a rose window|narrow lancets",
                "arched|dark|black|narrow|round-topped|pointed|tall|matching|symmetrical|"
                "stained|gothic|deep|inked|slim|solemn|paired|simple",
            ),
            _Part(
                "an arched door|an arched doorway|a portal|a porch|a great door|a doorway|"
                "an entrance|a dark portal|a west door|a round-headed door",
                "arched|dark|central|black|wide|deep|rounded|solemn|tall|open|heavy|"
                "welcoming|shadowy|inviting|grand|plain|narrow",
            ),
            _Part(
                "a nave|a long nave|a gabled roof|a pitched roof|a low roof|a hatched nave|"
                "a broad nave|a dark roof|a pointed gable|wings|two low wings|a gabled front",
                "long|low|broad|gabled|pitched|dark|hatched|cross-hatched|wide|sloping|plain|"
                "simple|steep|squat|sturdy|spacious|even",
            ),
        ),
        "standing|rising|sitting|set|nestled|keeping watch|planted|built|settled|"
        "presiding|facing out|dominating|perched|waiting|watching over the place|"
        "gathering the faithful|standing proud|resting|reaching heavenward|pointing skyward",
    ),
    "windmill": _Kind(
        "windmill|mill|wind mill|post mill|smock mill|grain mill|old mill|dutch windmill|"
        "corn mill|sail mill|flour mill|wind-driven mill|village mill|country mill|"
        "four-sailed mill|polder mill|wind engine|windpump|drainage mill|tower mill|"
        "stone mill|brick mill|wooden mill|timber mill|cap mill|"
        "sawmill|oil mill|paint mill|pumping mill|hollow post mill|tjasker|"
        "wind-powered mill|grist mill|gristmill|farm mill|paltrok|wip mill|"
        "spider mill|bovenkruier|grondzeiler|stellingmolen|peat mill|hulling mill|"
        "snuff mill|mustard mill|bark mill|chalk mill|cement mill|estate mill|"
        "manorial mill|parish mill|hill mill|marsh mill|fen mill|dyke mill|smock windmill|"
        "post windmill|tower windmill|drainage windmill|water-pumping mill"
        "|norfolk mill|suffolk mill|kentish mill|sussex mill|lincolnshire mill"
        "|cambridgeshire mill|zaan mill|kinderdijk mill|frisian mill|flemish mill|picardy mill"
        "|breton mill|la mancha mill|manchegan mill|cretan mill|mykonos mill|portuguese mill"
        "|aegean mill|cycladic mill|balearic mill|maltese mill|cape mill|boer mill"
        "|american windmill|prairie windmill|farm windpump|ranch windpump|staging mill"
        "|stage mill|skirt mill|open trestle mill|trestle mill|turret mill|composite mill"
        "|midget mill|model mill|toy mill|folly mill|estate windmill|abbey mill|priory mill"
        "|monks' mill|miller's mill|windmolen|molen|moulin|molino|wiatrak|corn windmill|flax mill|"
        "linen mill|hemp mill|rapeseed mill|oilseed mill|spice mill|tobacco mill|rice mill|"
        "barley mill|malt mill|rye mill|oat mill|buckwheat mill|seaside mill|clifftop mill|"
        "hilltop mill|hillside mill|riverside mill|lakeside mill|roadside mill|manor windmill|"
        "village windmill|county mill|heritage mill|restored mill|derelict mill|working windmill|"
        "essex mill|surrey mill|hampshire mill|wiltshire mill|somerset mill|yorkshire mill|"
        "lancashire mill|cheshire mill|anglesey mill|irish mill|scottish mill|danish mill|"
        "swedish mill|finnish mill|polish mill|german mill|prussian mill|russian mill|"
        "hungarian mill|french mill|gascon mill|spanish mill|catalan mill|italian mill|"
        "sicilian mill|greek mill|wipmolen|spinnenkop|standerdmolen|korenmolen|poldermolen|"
        "zaagmolen|oliemolen|pelmolen|verfmolen|cap windmill|wind-driven engine|"
        "sail engine|wind engine mill|windwheel|wind wheel|wind machine|sail wheel|"
        "molinillo|moinho|mulino|kvarn|"
        "paltrok mill|sawing mill|tjasker mill|bovenkruier mill|achtkant|achtkant mill|"
        "grondzeiler mill|stellingmolen mill",
        "four-sailed|sailed|conical|tapered|tapering|dutch|wooden|whirling|turning|"
        "spinning|stationary|rustic|traditional|working|cross-shaped|tall|quaint|"
        "picturesque|lonely|rural|weatherworn|old|old-fashioned|charming|iconic|"
        "silent|still|idle|busy|hardworking|creaking|lonesome|windswept|squat|"
        "stout|sturdy|thatched|tarred|brick|stone|capped|four-armed|cross-armed|"
        "x-shaped|whirligig-like|flemish|frisian|zeeland|english|white-capped|black-tarred|"
        "weather-boarded|clapboarded|shingled|octagonal|eight-sided"
        "|many-sided|round-bodied|pepperpot|bonnet-capped|dome-capped|ogee-capped|fantailed"
        "|sail-crossed|four-vaned|slat-sailed|cloth-sailed|cap-winded|tail-poled|fantail-turned|"
        "sail-bearing|shuttered-sailed|common-sailed|spring-sailed|patent-sailed|roller-reefing|"
        "cloth-spread|canvas-sailed|reefed|furled-sailed|bare-sailed|skeleton-sailed|"
        "lattice-armed|gallery-ringed|reefing-staged|tarred-bodied|white-bodied|pale-bodied|"
        "dark-bodied|round-shouldered|broad-based|narrow-waisted|pot-bellied|bell-shaped|"
        "cone-bodied|jaunty|perky|cheeky|game|tireless|indefatigable|patient-looking",
        (
            _Part(
                "four sails|sails|four arms|four blades|vanes|sweeps|four vanes|latticed sails|"
                "cross-shaped sails|hatched sails|a cross of sails|four hatched sails|"
                "four sweeps|four spars with sails|a sail cross|a set of sails",
                "hatched|angled|tilted|crossed|turning|spinning|whirling|spread|diagonal|"
                "long|broad|slatted|canvas-covered|still|rotating|outstretched|skewed|"
                "lattice-like|ladder-like|cocked|askew|oblique|slanted",
            ),
            _Part(
                "a tapered body|a tapering body|a conical body|a sloping body|a cap|"
                "a pointed cap|a hatched body|a broad base|a tapered base|a dark cap|"
                "a boat-shaped cap|a cone-shaped body|a sturdy body|a shaded flank",
                "tapered|tapering|conical|sloping|hatched|cross-hatched|dark|pointed|squat|"
                "broad|solid|stubby|stout|bulky|sturdy|plain|weathered",
            ),
            _Part(
                "an arched door|a small door|a door|a dark doorway|a low door|an entrance|"
                "a little arched door|a black door|a tiny door|a doorway at its foot",
                "arched|small|dark|low|black|narrow|tiny|rounded|solid|single|humble|"
                "plain|squat|shadowy",
            ),
        ),
        "standing|turning|spinning|working|grinding|catching the wind|whirling|rising|"
        "waiting|sitting|facing the wind|milling|pumping|resting|idling|stopped|"
        "standing still|keeping watch|drawing water|grinding corn|turning slowly",
    ),
    "horse": _Kind(
        "horse|pony|mare|stallion|steed|colt|filly|foal|gelding|cob|charger|nag|draught horse|"
        "cart horse|shire horse|work horse|riding horse|thoroughbred|mustang|palfrey|"
        "carthorse|racehorse|warhorse|hunter|dray horse|farm horse|packhorse|hack horse|"
        "plough horse|courser|destrier|dark horse|arab horse|arabian|clydesdale|percheron|"
        "shire|suffolk punch|shetland pony|welsh pony|connemara pony|exmoor pony|"
        "dartmoor pony|fell pony|highland pony|haflinger|lipizzaner|andalusian|friesian|"
        "hanoverian|trakehner|morgan|quarter horse|standardbred|hackney|konik|fjord horse|"
        "icelandic horse|brumby|bronco|cow pony|polo pony|trotter|pacer|yearling|"
        "broodmare|sire|jennet|saddle horse|coach horse|cavalry horse|"
        "hunter horse|show horse|plow horse|equine|equid|ardennes|boulonnais|breton|"
        "comtois|noriker|belgian|brabant|jutland|dole|fjord|gotland pony|"
        "eriskay pony|new forest pony|hackney pony|carriage horse|carriage pony|"
        "trekking pony|pit pony|tinker|gypsy cob|welsh cob|irish cob|irish draught|"
        "yorkshire coach horse|barb|akhal-teke|criollo|paso fino|"
        "tennessee walker|saddlebred|morab|lusitano|kladruber|frederiksborg|"
        "selle fran\u00e7ais|holsteiner|oldenburg|westphalian|wielkopolski|budyonny|"
        "cleveland bay horse|dales pony|eriskay|kerry bog pony|norman cob|vanner|drum horse|"
        "cob horse"
        "|jennet horse|ambler|rouncey|sumpter|sumpter horse"
        "|bay horse|roan|strawberry roan|blue roan|sorrel|black horse"
        "|weanling|two-year-old|three-year-old|hack|hunter pony|remount|trooper"
        "|cob mare|gelding cob|dray|vanner cob|tinker cob|ridgling|maiden mare|brood mare"
        "|stud horse|stallion colt|colt foal|filly foal|dobbin|workhorse|post-horse|posthorse|"
        "wheeler|trace horse|shaft horse|thill horse|fore-horse|lead horse|pack pony|hill pony|"
        "moorland pony|heath pony|forest pony|marsh pony|sand pony|beach pony|circus horse|"
        "show pony|gymkhana pony|riding pony|child's pony|pit horse|tram horse|bus horse|"
        "omnibus horse|cab horse|funeral horse|brewery horse|coal horse|milk horse|baker's horse|"
        "butcher's horse|old nag|ploughing horse|karabakh|karabair|kabardin|don horse|"
        "orlov trotter|orlov|camargue horse|camargue|merens|pottok|landais|auxois|poitevin|"
        "mulassier|castillonnais|ariegeois|asturcon|garrano|sorraia|marismeno|carthusian horse|"
        "anglo-arab|shagya|gidran|nonius|furioso|kisber|lipica|posavac|hucul|hutsul|malopolski|"
        "sokolsky|tori horse|zemaitukas|finnhorse|nordland horse|faroese pony|garron|"
        "highland garron|lundy pony",
        "dark|four-legged|sturdy|strong|muscular|handsome|proud|noble|powerful|"
        "stocky|sleek|long-legged|long-tailed|shaded|hatched|riderless|unsaddled|"
        "saddleless|bareback|magnificent|spirited|patient|stout|lean|heavy|"
        "lone|solitary|alert|calm|placid|gentle|docile|fine|elegant|graceful|"
        "well-groomed|glossy|dark-coated|cross-hatched|big-bellied|barrel-chested|"
        "thick-necked|swan-necked|high-headed|upright|poised|standing|waiting|"
        "unbridled|untethered|free|wild|feral|domestic|hardy|rugged|clean-limbed|short-coupled|"
        "deep-girthed|fine-boned|big-boned|heavy-boned"
        "|feather-footed|shaggy-fetlocked|dish-faced|roman-nosed|hollow-backed|sway-backed"
        "|well-muscled|well-sprung|leggy-looking|coltish|frisky|skittish|mettlesome|biddable|"
        "sleek-coated|smooth-coated|rough-coated|shaggy-coated|long-maned|thick-maned|hog-maned|"
        "hogged|plaited|docked|bob-tailed|bang-tailed|flowing-maned|long-headed|fine-headed|"
        "lean-headed|bright-eyed|kind-eyed|soft-eyed|large-eyed|short-backed|long-backed|"
        "high-withered|well-ribbed|well-rounded|sloping-shouldered|straight-shouldered|"
        "clean-legged|flat-boned|sound-limbed|well-shod|unshod|four-square|square-standing|"
        "foursquare-standing|statuesque-standing",
        (
            _Part(
                "four legs|long legs|its legs|slender legs|thin legs|four spindly legs|"
                "planted legs|sturdy legs|striding legs|legs apart|four hooves|hooves",
                "long|slender|thin|spindly|sturdy|planted|striding|lean|dark|straight|"
                "bent|angled|splayed|delicate|stiff|firm|muscular",
            ),
            _Part(
                "a long tail|a tail|a flowing tail|a sweeping tail|a hanging tail|"
                "a swishing tail|a thick tail|a drooping tail|a tail hanging down|"
                "a trailing tail",
                "long|flowing|sweeping|hanging|swishing|thick|drooping|dark|curved|bushy|"
                "trailing|wispy|full|heavy|limp",
            ),
            _Part(
                "its head raised|a raised head|its head held high|an arched neck|a long neck|"
                "a proud head|its neck stretched|a lifted head|a dark head|a long muzzle|"
                "its muzzle up|pricked ears",
                "raised|high|arched|long|proud|lifted|dark|stretched|alert|tilted|noble|"
                "outstretched|upturned|elegant|curved|bold",
            ),
            _Part(
                "a dark body|a hatched body|a heavy body|a rounded belly|a barrel body|"
                "a shaded coat|a cross-hatched coat|a dark coat|a stout body|a broad back|"
                "strong haunches|a deep chest",
                "dark|hatched|cross-hatched|heavy|rounded|barrel-shaped|shaded|stout|solid|"
                "glossy|thick|smooth|sleek|muscular|broad|deep",
            ),
        ),
        "standing|posing|waiting|resting|pausing|stepping|walking|trotting|"
        "stamping|idling|tethered|loitering|halting|ambling|prancing|strutting|"
        "standing still|standing proud|looking on|keeping watch|dozing|lingering|"
        "stepping out|setting off|striding",
    ),
}

BIRD_NOUNS = (
    "bird|gull|seagull|swallow|crow|rook|raven|starling|sparrow|martin|swift|tern|dove|"
    "pigeon|lark|skylark|jackdaw|kite|hawk|falcon|kestrel|buzzard|eagle|petrel|cormorant|"
    "curlew|plover|lapwing|finch|thrush|blackbird|magpie|kittiwake|fulmar|songbird|seabird|"
    "goose|duck|heron|stork|egret|osprey|harrier|merlin|shearwater|gannet|sandpiper|"
    "oystercatcher|nightjar|cuckoo|wren|linnet|bunting|pipit|wagtail|warbler|"
    "herring gull|black-headed gull|common gull|barn swallow|house martin|sand martin|"
    "house sparrow|tree sparrow|carrion crow|hooded crow|wood pigeon|rock dove|"
    "turtle dove|collared dove|stock dove|red kite|black kite|sparrowhawk|goshawk|"
    "peregrine|hobby|honey buzzard|golden eagle|sea eagle|marsh harrier|hen harrier|"
    "chough|jay|nuthatch|goldfinch|greenfinch|chaffinch|bullfinch|siskin|redpoll|"
    "yellowhammer|reed bunting|meadow pipit|rock pipit|skua|puffin|guillemot|razorbill|"
    "auk|albatross|frigatebird|pelican|swan|mute swan|whooper swan|"
    "greylag|barnacle goose|brent goose|teal|wigeon|mallard|pintail|shoveler|eider|"
    "scoter|merganser|goosander|grebe|coot|moorhen|crake|godwit|whimbrel|"
    "redshank|greenshank|dunlin|sanderling|turnstone|snipe|woodcock|avocet|"
    "stilt|ibis|spoonbill|bittern|bustard|owl|barn owl|tawny owl|"
    "short-eared owl|roller|bee-eater|hoopoe|oriole|waxwing|fieldfare|redwing|"
    "mistle thrush|song thrush|ring ouzel|robin|dunnock|blackcap|whitethroat|"
    "chiffchaff|goldcrest|treecreeper|tit|great tit|blue tit|coal tit|long-tailed tit|"
    "swiftlet|nighthawk|whip-poor-will|martlet|mew|sea mew|pewit|peewit|throstle|"
    "merle|corbie|daw|hern|tercel|eyas|haggard|wader|shorebird|waterbird|raptor|"
    "songster|flier|flyer|passerine|bramblin|brambling|twite|crossbill|hawfinch|"
    "serin|corn bunting|cirl bunting|snow bunting|ortolan|woodlark|shore lark|"
    "crested lark|calandra lark|red-rumped swallow|crag martin|alpine swift|"
    "pallid swift|little tern|sandwich tern|arctic tern|roseate tern|black tern|"
    "common tern|little gull|kittiwake gull|glaucous gull|iceland gull|"
    "great black-backed gull|lesser black-backed gull|mediterranean gull|"
    "storm petrel|leach's petrel|manx shearwater|sooty shearwater|"
    "great skua|arctic skua|pomarine skua|long-tailed skua|black guillemot|"
    "little auk|shag|bewick's swan|pink-footed goose|white-fronted goose|"
    "bean goose|canada goose|shelduck|gadwall|garganey|pochard|tufted duck|"
    "scaup|goldeneye|smew|montagu's harrier|rough-legged buzzard|"
    "lanner|saker|gyrfalcon|red-footed falcon|lesser kestrel|eleonora's falcon|dotterel|phalarope|"
    "wheatear|stonechat|whinchat|redstart|black redstart|flycatcher"
    "|spotted flycatcher|pied flycatcher|kingfisher|dipper|quail|partridge|grey partridge"
    "|pheasant|grouse|red grouse|black grouse|ptarmigan|capercaillie|nightingale|bluethroat"
    "|wryneck|woodpecker|green woodpecker|spotted woodpecker|lesser spotted woodpecker|firecrest"
    "|sedge warbler|reed warbler|willow warbler|wood warbler|garden warbler|grasshopper warbler"
    "|dartford warbler|marsh tit|willow tit|crested tit|bearded tit|bearded reedling"
    "|penduline tit|golden oriole|red-backed shrike|shrike|butcher-bird|great grey shrike"
    "|woodchat|rose-coloured starling|ring-necked parakeet|parakeet|nightingale thrush"
    "|little owl|long-eared owl|snowy owl|eagle owl|scops owl|little egret|great egret"
    "|grey heron|purple heron|night heron|squacco heron|white stork|black stork|glossy ibis"
    "|crane|common crane|demoiselle crane|lammergeier|bearded vulture|griffon vulture|vulture"
    "|condor|caracara|frigate bird|booby|tropicbird|noddy|prion|diving petrel|fulmar petrel"
    "|sooty tern|bridled tern|caspian tern|gull-billed tern|whiskered tern|stint|little stint"
    "|curlew sandpiper|purple sandpiper|green sandpiper|wood sandpiper|common sandpiper"
    "|spotted redshank|grey plover|golden plover|ringed plover|kentish plover|killdeer"
    "|stone-curlew|thick-knee|pratincole|mew gull|laughing gull|franklin's gull|sabine's gull"
    "|ross's gull|ivory gull|bonaparte's gull|ring-billed gull|western gull|california gull"
    "|heermann's gull|slaty-backed gull|kelp gull|swallow-tailed kite|snail kite"
    "|mississippi kite|everglade kite|brahminy kite|whistling kite|black-shouldered kite"
    "|fish eagle|bald eagle|tawny eagle|booted eagle|short-toed eagle|bonelli's eagle"
    "|spotted eagle|imperial eagle|steppe eagle|harpy eagle|secretary bird"
    "|chicken hawk|fish hawk|pigeon hawk|sparrow hawk|duck hawk|marsh hawk|red-tailed hawk"
    "|cooper's hawk|swainson's hawk|ferruginous hawk|rough-legged hawk|swift tern|cliff swallow"
    "|tree swallow|bank swallow|purple martin|chimney swift|common swift|needletail|spinetail"
    "|treeswift|frogmouth|potoo|poorwill|nightbird|night bird|storm bird|rain bird|rainbird"
    "|windhover|stannel|gled|glede|puttock|fern owl|goatsucker|dorhawk|mavis|ousel|ouzel"
    "|stormcock|hedge sparrow|titlark|yaffle|hickwall|peewee|tewit|teuchit|whaup|maw|gor-crow"
    "|hoodie|scart|dunter|loon|diver|rock thrush|blue rock thrush|rock sparrow|snowfinch|"
    "citril finch|scarlet rosefinch|rosefinch|pine grosbeak|grosbeak|evening grosbeak|cardinal|"
    "bobolink|meadowlark|grackle|cowbird|redwing blackbird|tanager|"
    "scarlet tanager|vireo|kinglet|gnatcatcher|catbird|mockingbird|thrasher|phoebe|kingbird|"
    "pewee|waxbill|weaver bird|whydah|bishop bird|sunbird|honeyeater|wattlebird|"
    "friarbird|bellbird|lyrebird|bowerbird|currawong|kookaburra|lorikeet|cockatoo|galah|rosella|"
    "budgerigar|lovebird|macaw|toucan|hornbill|trogon|quetzal|motmot|jacamar|puffbird|barbet|"
    "honeyguide|sapsucker|flicker|piculet|wood duck|harlequin duck|"
    "long-tailed duck|ferruginous duck|ruddy duck|mandarin duck|whistling duck|muscovy duck|"
    "steamer duck|torrent duck|red-throated diver|black-throated diver|great northern diver|"
    "white-billed diver|little grebe|great crested grebe|red-necked grebe|slavonian grebe|"
    "black-necked grebe|dabchick|spotted crake|corncrake|purple gallinule|"
    "gallinule|great bustard|little bustard|houbara|sandgrouse|hoopoe lark|"
    "desert lark|bar-tailed lark|dupont's lark|thekla lark|lesser short-toed lark|tawny pipit|"
    "water pipit|tree pipit|red-throated pipit|richard's pipit|yellow wagtail|grey wagtail|"
    "pied wagtail|white wagtail|citrine wagtail|bohemian waxwing|alpine accentor|accentor|"
    "rufous bush robin|thrush nightingale|isabelline wheatear|desert wheatear|"
    "black-eared wheatear|pied wheatear|moustached warbler|aquatic warbler|marsh warbler|"
    "great reed warbler|icterine warbler|melodious warbler|subalpine warbler|sardinian warbler|"
    "barred warbler|orphean warbler"
)
BIRD_LOOKS = (
    "black|dark|small|little|tiny|distant|far-off|winged|v-shaped|simple|sketched|inked|"
    "outstretched|gliding|soaring|high-flying|stylised|free|wild|lonely|busy|restless|"
    "migrating|graceful|swooping|crooked-winged|broad-winged|sharp-winged|fast|"
    "wide-winged|long-winged|slender-winged|bent-winged|m-shaped|tick-like|"
    "brushstroke|calligraphic|scribbled|minute|faraway|remote|diminutive|nimble|"
    "agile|carefree|wheeling|circling|hovering|darting|fleeting|airborne|"
    "wind-borne|high|lofty|noisy|quiet|silent|watchful|hungry|homebound|"
    "homeward|seaward|wandering|roving|errant|tireless|lazy|playful|dainty|"
    "spare|economical|two-stroke|hook-winged|angular|cursive|whimsical|sketchy|"
    "suggested|schematic|shorthand|abstract|token|emblematic|sooty|smudgy|blot-like|comma-like|"
    "check-mark|tick-shaped|bracket-shaped|crescent-winged|gull-winged|scythe-winged|"
    "sickle-winged|narrow-winged|stiff-winged|flapping|beating|wing-tipped|storm-tossed|"
    "wind-tossed"
)
BIRD_FLIGHT = (
    "flying|circling|wheeling|soaring|gliding|hovering|in flight|winging|swooping|flapping|"
    "drifting|floating|sailing|darting|flitting|banking|climbing|coasting|skimming|"
    "fluttering|cruising|passing|riding the wind|on the wing|turning|dipping|migrating|"
    "flocking|streaming|winging their way|wheeling about|beating their wings|"
    "playing in the air|riding the air|scudding|tumbling|careering|sweeping|"
    "looping|spiralling|heading back|heading out|travelling|journeying|roaming|"
    "patrolling|hunting|scouting|chasing|racing|hurrying|idling|lazing|lingering|"
    "quartering|stooping|volplaning|kiting|tilting|seesawing|zigzagging|"
    "jinking|slanting down|sideslipping|rising|descending|homing|commuting|"
    "squabbling|calling|crying|mewing|chattering|twittering|cawing|screeching|beating upwind|"
    "riding a thermal|on a thermal|in a thermal|banking away|peeling off|breaking away|veering|"
    "swerving|gyring|eddying|spinning|whirling|cartwheeling|somersaulting|dancing|frolicking|"
    "gambolling"
)

# A flock's shape as drawn (synthetic._FLOCKS): two birds staggered, three in a loose V.
FLOCK_SHAPES = {
    1: "",
    2: "one a little behind the other|staggered|side by side|in a pair|wing to wing|together|"
    "in tandem|one above the other|close together|one trailing the other|in step|"
    "a wingspan apart|one leading|neck and neck|in company|companionably",
    3: "in a loose V|in formation|in a triangle|in a V|in a small V|in a wedge|in a cluster|"
    "in a ragged V|in a tight group|in an arrowhead|together|in a chevron|in a little knot|"
    "in a loose cluster|in an uneven triangle|in a skein|in a little squadron|"
    "in a lopsided V|in a huddle|in a scattered group",
}
SUN = (
    "sun|rayed sun|radiant sun|shining sun|blazing sun|bright sun|"
    "midday sun|morning sun|summer sun|glowing sun|spiky sun|starburst sun|beaming sun|"
    "burning sun|noonday sun|dazzling sun|afternoon sun|warm sun|"
    "cheerful sun|fiery sun|golden sun|round sun|pale sun|sunburst|risen sun|high sun|"
    "spiked sun|blinding sun|brilliant sun|friendly sun|smiling sun|jolly sun|"
    "benevolent sun|generous sun|summery sun|hot sun|scorching sun|baking sun|"
    "white sun|flaming sun|shimmering sun|twinkling sun|starry sun|wheel-like sun|"
    "daisy-like sun|star-shaped sun|spoked sun|heraldic sun|sunwheel|sun disc|"
    "solar disc|day star|june sun|cartoon sun|child's sun|storybook sun|"
    "emblem sun|compass-rose sun|catherine-wheel sun|sunflower-like sun|ringed sun|haloed sun|"
    "crowned sun|bristling sun|prickly sun|sea-urchin sun|thistle sun|dandelion sun|marigold sun|"
    "chrysanthemum sun|clockwork sun|cogwheel sun|sprocket sun|asterisk sun|pinwheel sun|"
    "firework sun|brooch sun|medallion sun|coin sun|buttercup sun|august sun|july sun|harvest sun|"
    "haymaking sun|"
    "phoebus|helios|sol|daystar|fiery orb|"
    "golden orb|blazing orb|bright orb|solar orb|sun orb|glowing orb|radiant orb|burning orb|"
    "white orb|spangled sun|sequined sun|glittering sun|glistening sun|incandescent sun|"
    "molten sun|smouldering sun|sizzling sun|sweltering sun|unclouded sun|naked sun|unveiled sun|"
    "round-faced sun|grinning sun|laughing sun|winking sun|all-seeing sun|staring sun|glaring sun|"
    "bald sun|bristly sun|hairy sun|whiskered sun|feathered sun|petalled sun|frilled sun|"
    "fringed sun|ruffed sun|tasselled sun|radiate sun|stellate sun|spoky sun|ratchet sun|gear sun|"
    "sawtooth sun|many-rayed sun|twelve-rayed sun|long-rayed sun|short-rayed sun|even-rayed sun"
)
SUN_LOOKS = (
    "with rays|with twelve rays|with long and short rays|ringed with rays|with its rays|"
    "with alternating rays|with a pale centre|with a ring of spikes|with straight rays|"
    "with pointed rays|throwing out rays|with a white middle|trailing beams|with beams|"
    "with a halo of rays|with a crown of rays|with spokes of light|with a blank middle|"
    "with a white centre|bristling with rays|fringed with rays|with a corona of strokes|"
    "with a ruff of rays|with even rays|with a dozen rays|surrounded by short strokes"
)
MOON = {
    "crescent": "crescent moon|thin crescent moon|sickle moon|crescent|slim crescent|"
    "waning moon|curved moon|horned moon|slender crescent|hatched crescent|lunar crescent|"
    "waning crescent|fingernail moon|banana moon|cross-hatched crescent|sliver of moon|"
    "partial moon|curl of moon|crescent-shaped moon|young moon|old moon|paring of moon|"
    "thin moon|slip of moon|sickle|hook of moon|curved crescent|"
    "dark crescent|narrow crescent|shaded crescent|moon crescent|quarter moon|"
    "claw of moon|horn-shaped moon|shadowed moon|boat moon|cradle moon|"
    "cheshire-cat moon|moonlet|nail-paring moon|ghost of a moon|wisp of moon|"
    "arc of moon|bow of moon|scimitar moon|horned crescent|new crescent|silver crescent|"
    "silvery crescent|ivory crescent|pewter crescent|waxing crescent|evening crescent|"
    "morning crescent|pale crescent|ghostly crescent|delicate crescent|dainty crescent|"
    "fine crescent|faint crescent|tilted crescent|lopsided crescent|upturned crescent|"
    "lunar sickle|moon sickle|silver sickle|hooked moon|clipped moon|bitten moon|half-eaten moon|"
    "nibbled moon|thumbnail moon|eyelash moon|eyebrow moon|smile moon|grin moon|canoe moon|"
    "hammock moon|heraldic crescent|boomerang moon|scythe moon|sabre moon|cutlass moon|tusk moon|"
    "talon moon|ram's-horn moon|cowhorn moon|fishhook moon|comma moon|parenthesis moon|"
    "bracket moon|melon-rind moon|orange-peel moon|lemon-rind moon|rind of moon|shaving of moon|"
    "splinter of moon|shard of moon|sliver moon|wafer moon",
    "full": "full moon|round moon|pale full moon|whole moon|bright full moon|spotted moon|"
    "cratered moon|hatched moon|harvest moon|round full moon|shaded full moon|"
    "full round moon|pocked moon|mottled moon|complete moon|glowing moon|luminous moon|"
    "silvery moon|heavy full moon|big moon|fat moon|plump moon|disc-like moon|"
    "man-in-the-moon moon|hunter's moon|pale moon|ghostly moon|pewter moon|"
    "lantern moon|coin-like moon|freckled moon|blotched moon|"
    "dappled moon|speckled moon|grey moon|smoky moon|solemn moon|wolf moon|"
    "snow moon|corn moon|cold moon|barley moon|sturgeon moon|pink moon|"
    "flower moon|strawberry moon|buck moon|beaver moon|cheese moon|"
    "dinner-plate moon|saucer moon|clock-face moon|porthole moon|"
    "pearl moon|opal moon|milk moon|bone moon|"
    "chalk moon|stone moon|pitted moon|pockmarked moon|scarred moon|blotchy moon|patchy moon|"
    "shadowed full moon|man in the moon|moonface|moon face|lunar face|old man moon|august moon|"
    "september moon|october moon|november moon|december moon|january moon|blue moon|supermoon|"
    "perigee moon|midsummer moon|yule moon|lambing moon|ice moon|platter moon|tambourine moon|"
    "drum moon|gong moon|medallion moon|doubloon moon|shilling moon|penny moon|florin moon|"
    "cameo moon|locket moon|pendant moon|bauble moon|balloon moon|globe moon|marble moon|"
    "mirror moon|looking-glass moon|buttery moon|creamy moon|milky moon|chalky moon|powdery moon|"
    "floury moon|dusty moon",
}
MOON_LOOKS = {
    "crescent": "with pointed horns|with sharp tips|cross-hatched|darkly shaded|"
    "facing left|curving right|lit on the left|with its horns to the right|thin and curved|"
    "hatched dark|like a reaping hook|like a claw|like a fingernail|like a bent bow|"
    "like a slice of melon|like a scythe blade|thin as a thread|with its points turned right|"
    "curled like a comma|shaped like a letter c",
    "full": "with two dark spots|with craters|with dark patches|with spots|marked with seas|"
    "with two shadows|softly hatched|lightly shaded|with blotchy markings|with spotted markings|"
    "with shadowy markings|with lunar seas|with blemishes|with dark maria|with two blots|"
    "with freckles|like a coin|like a lantern|like a plate|like a button|with features|"
    "with a pair of dark marks|with smudges",
}
SKY_SPOTS = {
    "far left": "in the upper left|at top left|high on the left|in the top left corner|"
    "up on the left|in the left of the sky|near the top left|tucked in the corner|"
    "in the north-west corner|by the left edge of the sky",
    "left": "in the upper left|high on the left|up on the left|left of centre in the sky|"
    "at top left|in the sky on the left|a little left of centre|up and to the left",
    "centre": "high in the middle|at the top|overhead|high in the sky|at top centre|"
    "in the middle of the sky|straight above|in the centre of the sky|at its zenith|"
    "directly overhead|up at the top|dead centre in the sky",
    "right": "in the upper right|high on the right|up on the right|right of centre in the sky|"
    "at top right|in the sky on the right|a little right of centre|up and to the right",
    "far right": "in the upper right|at top right|high on the right|in the top right corner|"
    "up on the right|in the right of the sky|near the top right|tucked in the corner|"
    "in the north-east corner|by the right edge of the sky",
}
LIGHT_VERBS = {
    "sun": "shining|glowing|blazing|beaming|burning|hanging|shining down|radiating|"
    "glaring|gleaming|sparkling|presiding|looking down|sitting|smiling down|peeping|"
    "rising|climbing|standing|floating|watching|dazzling|bursting|sending out rays|"
    "pouring down light|beating down|spreading light|warming everything",
    "moon": "hanging|glowing|shining|rising|floating|gleaming|watching|looking down|"
    "sitting|presiding|peeping out|glimmering|suspended|riding high|sailing|"
    "keeping watch|shimmering|brooding|lingering|waiting|resting|drifting|hovering|"
    "casting a pale light|silvering everything|dangling",
}
UNDER = {
    "sun": "under|beneath|below|underneath|in the light of|lit by|basking under|bathed by|"
    "warmed by|in the glare of|under the rays of|in the sunshine of|in the heat of|"
    "under the gaze of|in the warmth of|under the glow of|brightened by|watched by|lit up by|"
    "shone on by|beaming on|bathed in the light of|under the blaze of|in the blaze of|"
    "in the dazzle of|in the radiance of|under the beam of|beneath the beams of|in the shine of|"
    "in the sunlight of|in the brightness of|in the heat and light of|overlooked by|"
    "presided over by|guarded by|kept company by|crowned by|topped by",
    "moon": "under|beneath|below|underneath|by the light of|lit by|in the glow of|"
    "watched over by|beneath the gaze of|under the pale light of|silvered by|"
    "in the glimmer of|in the shine of|under the watch of|beneath the glow of|"
    "under the eye of|bathed in the light of|lit up by|shone on by|glimmered over by|"
    "bathed in the glow of|under the lamp of|beneath the lantern of|in the sheen of|"
    "in the gleam of|in the pallor of|under the pallor of|in the silver of|in the wash of|"
    "in the radiance of|in the luminance of|under the beam of|beneath the beams of|overlooked by|"
    "presided over by|guarded by|kept company by|crowned by|topped by",
}
PLACES = {
    "far left": "at the far left|on the far left|at the left edge|in the left corner|"
    "hard against the left border|far to the left|on the extreme left|at the very left|"
    "tucked into the left corner|pushed to the left|at the left margin|close to the left frame",
    "left": "on the left|at left|to the left|on the left side|in the left half|"
    "on the left-hand side|left of centre|off to the left|in the left third|leftward|"
    "over on the left|toward the left",
    "centre": "in the centre|in the middle|at the centre|in the middle of the picture|"
    "at the heart of the picture|centre stage|mid-picture|dead centre|in the foreground|"
    "front and centre|squarely in the middle|in the central part|at the midpoint",
    "right": "on the right|at right|to the right|on the right side|in the right half|"
    "on the right-hand side|right of centre|off to the right|in the right third|rightward|"
    "over on the right|toward the right",
    "far right": "at the far right|on the far right|at the right edge|in the right corner|"
    "hard against the right border|far to the right|on the extreme right|at the very right|"
    "tucked into the right corner|pushed to the right|at the right margin|"
    "close to the right frame",
}
SIZES = {
    "small": "small|little|tiny|low|modest|diminutive|short|compact|humble|miniature|squat|"
    "stubby|slight|petite|wee|lowly|undersized|dainty|toy-like|dwarf|pint-sized|meagre|"
    "minute|minuscule|teeny|itty-bitty|bijou|baby|mini|puny|scaled-down|half-sized|"
    "small-scale|smallish|lowish|knee-high|tiddly|titchy|weeny|wee-sized|half-pint|cut-down|"
    "lilliputian|elfin|"
    "shrunken|stunted|runty|bantam|pocket-sized|"
    "unassuming|unimposing|inconspicuous|modest-sized|moderate|slim|trim",
    "large": "large|big|great|huge|massive|grand|imposing|broad|substantial|enormous|"
    "sizeable|giant|mighty|bulky|hefty|vast|generous|hulking|commanding|considerable|"
    "outsized|colossal|monumental|ample|immense|gigantic|mammoth|towering|whopping|"
    "hefty-looking|capacious|oversized|full-sized|king-sized|burly|brawny|chunky|"
    "weighty|prominent|dominant|heavyset|ponderous|titanic|tremendous|stout|wide|"
    "spacious|expansive|roomy|largish|biggish|gargantuan|behemoth|elephantine|"
    "brobdingnagian|cyclopean|herculean|leviathan|jumbo|mega|strapping|thumping",
    "tall": "tall|high|lofty|towering|soaring|stately|elevated|statuesque|slender|lanky|"
    "long|sky-high|rangy|spindly|majestic|upstanding|aspiring|leggy|elongated|skyscraping|"
    "high-rising|skyward|sky-reaching|steepling|upright|vertical|attenuated|narrow|"
    "gangling|gangly|willowy|stretched|lean|thin|pencil-thin|needle-thin|tallish|"
    "sky-scraping|high-reaching|long-necked|rocketing|heaven-reaching|uplifted|"
    "beanpole|stilt-like|columnar|spire-like|obelisk-like|poker-straight|ramrod|"
    "cloud-touching|sky-piercing|storeyed|multi-storey|pole-thin",
}
# Size words only one kind takes, after the common ones: a small ship is "frail", a tall tree
# "full-grown".
KIND_SIZES: dict[str, dict[str, str]] = {
    "ship": {
        "small": (
            "frail|flimsy|fragile|cockleshell|lightweight|shallow|low-riding|half-decked|"
            "open-decked|single-handed|one-man|inshore|harbour-bound|nutshell|bobbing|"
            "skittering|featherweight|walnut-shell|paper-boat|bathtub|pond-sized|"
            "coracle-sized|narrow|puny-hulled|toylike"
        ),
        "large": (
            "ocean-crossing|deep-sea|blue-water|ocean-spanning|high-charged|ponderous|"
            "capacious|heavy-laden|deep-laden|broad-bottomed|heavily-built|floating-castle|"
            "three-hundred-ton|thousand-ton|castle-like|barn-like|whale-sized|fortress-like|"
            "hulking-hulled|tall-sided|sea-dominating|full-bodied|well-found|mighty-hulled|"
            "storm-proof"
        ),
    },
    "tower": {
        "small": (
            "stumpy|truncated|dumpy|squat-bodied|half-height|low-built|thickset|chess-piece|"
            "rook-like|pawn-sized|pepper-pot|stubby-walled|cottage-high|diminished|"
            "one-storey|dwarfed|knee-high|shrunken-looking|abbreviated|cut-short|"
            "unfinished-looking|cropped"
        ),
        "tall": (
            "sky-high|cloud-scraping|many-windowed|lanky-walled|spindly-walled|"
            "soaring-walled|six-storey|seven-storey|lighthouse-tall|mast-high|steeple-high|"
            "giddy|vertiginous|dizzying|overtopping|overshadowing|lordly|heaven-high|"
            "sheer-sided|pillar-like|finger-like"
        ),
    },
    "house": {
        "small": (
            "pokey|poky|cramped|box-like|matchbox|doll-sized|hutch-like|one-roomed|"
            "two-roomed|two-up-two-down|sentry-box|kennel-sized|shoebox|cabin-sized|snuggery|"
            "cubbyhole|cottagey|pint-pot|thimble-sized|gingerbread-sized|play-house"
        ),
        "large": (
            "rambling|sprawling|many-roomed|commodious|palatial|stately-sized|mansion-sized|"
            "double-fronted|three-storey|broad-fronted|wide-fronted|many-gabled|barn-sized|"
            "roomy-looking|well-proportioned|substantial-looking|generously-built|manorial|"
            "lordly-sized|gentleman's|squirely"
        ),
    },
    "tree": {
        "small": (
            "scrubby|stunted-looking|shrubby|bushlike|sapling-sized|dwarfish|bonsai-like|"
            "young|juvenile|immature|newly-planted|spindly-trunked|half-grown|runtish|"
            "scrawny|weedy|twiggy|knee-high-crowned|pot-sized|wand-like|whippy"
        ),
        "tall": (
            "full-grown|overgrown|sky-brushing|forest-giant|cathedral-like|patriarchal|"
            "centuries-old|hundred-year-old|primeval|towering-crowned|lofty-crowned|"
            "giant-sized|colossal-crowned|high-branched|tall-stemmed|long-boled|"
            "mast-straight|columnar-trunked|elder-statesman|grandfatherly|monarch-like"
        ),
    },
    "mountain": {
        "small": (
            "hummocky|hillocky|molehill|modest-sized|low-lying|rolling|gentle-sloped|"
            "low-browed|round-shouldered|knobbly|pimple-like|anthill|bump-like|pocket-sized|"
            "walkable|climbable|friendly-looking|unthreatening|toy-mountain"
        ),
        "large": (
            "alpine-sized|himalayan|gargantuan-shouldered|sky-filling|horizon-filling|"
            "earth-shouldering|world-high|cloud-piercing|unscalable|unconquerable|formidable|"
            "overwhelming|awe-inspiring|awesome|breathtaking|daunting|intimidating|"
            "terrifying|immovable|eternal|everlasting"
        ),
    },
    "bridge": {
        "small": (
            "hump-backed|narrow-decked|single-track|one-cart|footpath-wide|rivulet-spanning|"
            "brook-spanning|ditch-spanning|culvert-like|toy-bridge|miniature-arched|"
            "short-spanned|stubby-arched|low-arched|dainty-arched|pocket-bridge|trim-arched"
        ),
        "large": (
            "long-spanned|river-spanning|valley-spanning|wide-arched|great-arched|"
            "broad-decked|two-lane|many-piered|roman-sized|aqueduct-like|cathedral-arched|"
            "monumental-arched|imperial|stupendous|far-reaching|wide-striding|lordly-arched"
        ),
    },
    "church": {
        "small": (
            "chapel-sized|tiny-naved|one-bell|single-bell|wayside-sized|hut-like|shed-like|"
            "barnlike|bijou-sized|toy-church|prayer-sized|closet-like|snug-naved|"
            "handful-sized|meagre-naved|simple-naved"
        ),
        "tall": (
            "cathedral-sized|high-steepled|sky-pointing|heaven-soaring|tall-spired|"
            "lofty-spired|needle-spired|spear-like|arrow-like|soaring-spired|aspiring-spired|"
            "towering-spired|pinnacle-high|high-naved|vaulting|skyward-pointing"
        ),
    },
    "windmill": {
        "small": (
            "stubby-sailed|short-sailed|dumpy-bodied|toy-windmill|garden-sized|"
            "ornamental-sized|pint-sized-sailed|miniature-sailed|little-sailed|model-sized|"
            "hand-sized|whirligig-sized|diminished-sailed"
        ),
        "tall": (
            "long-sailed|broad-sailed|high-capped|tall-bodied|sky-sweeping|giant-armed|"
            "long-armed|windswept-tall|landmark|far-seen|far-visible|conspicuous|beacon-like|"
            "skyline-dominating|tallest"
        ),
    },
    "horse": {
        "small": (
            "pony-sized|runty|shaggy|stocky-legged|short-legged|small-boned|dainty-hoofed|"
            "toy-horse|rocking-horse|foal-sized|fine-boned-looking|bantam-sized|cobby|"
            "compact-bodied|neat-limbed|nimble-footed"
        ),
        "large": (
            "seventeen-hand|eighteen-hand|heavy-horse|big-hoofed|shire-sized|feather-legged|"
            "draught-sized|carthorse-sized|well-fed|massive-rumped|broad-rumped|deep-bodied|"
            "deep-chested|mountainous|ox-like|bull-necked|warhorse-sized"
        ),
    },
}
BESIDE = (
    "beside|next to|by|alongside|close to|near|right beside|against|hard by|close beside|"
    "at the side of|adjoining|abutting|flush against|shoulder to shoulder with|touching|"
    "side by side with|tight against|rubbing shoulders with|cheek by jowl with|nestled against|"
    "neighbouring|bordering|flanking|right next to|snug against|close up against|"
    "leaning on|huddled beside|joined to|up against|hugging|brushing|meeting|"
    "a step from|within touching distance of|cosying up to|keeping close to|"
    "pressed close to|near to|just by|next door to|in the company of|hand in glove with|"
    "elbow to elbow with|snuggled up to|wedged against|butting up against|"
    "abreast of|level with|on a par with|paired with|coupled with|twinned with|"
    "locked against|grazing|kissing|lapping against|leaning into|propped against|sidling up to|"
    "edging up to|crammed against|cheek to cheek with|jostling with|bumping against|bunched with|"
    "clustered with|grouped with|lined up with|alongside of|in line with|in a row with|"
    "shoulder-to-shoulder with|bordering on|hemmed in by|crowded by|squashed against|"
    "pushed against|heaped against|packed against|neighbour to|close neighbour of|"
    "close company with|in tight company with|overlooked by|huddling with|nuzzling|nestling by|"
    "sheltering beside|cuddling up to"
)
OVERLAP = (
    "overlapping|in front of|partly hiding|pressed against|crowding|partly covering|"
    "jostling|partly blocking|jammed against|crowded against|squeezed against|"
    "half hiding|obscuring part of|cutting into|clipping|eclipsing part of|"
    "nudging|elbowing|tucked in front of|set before|shouldering|screening|masking|"
    "concealing part of|shading|overshadowing|upstaging|crowding out|hemming in|jutting before|"
    "poking in front of|standing before|planted before|slotted in front of|half covering|"
    "lapping over"
)
LEFT_OF = (
    "left of|to the left of|some way left of|a little apart from|at a distance from|"
    "well to the left of|a short way from|apart from|some distance from|away from|"
    "separated from|a good way left of|with open ground between it and|"
    "clear of|well apart from|at some remove from|spaced out from|a stone's throw from|"
    "a few paces from|a fair distance from|some yards from|removed from|detached from|"
    "standing off from|distant from|a gap away from|at arm's length from|"
    "keeping its distance from|a way off from|with space to spare before|across from|"
    "opposite|facing|over from|along from|down from|up from|beyond|"
    "sundered from|cut off from|set apart from|parted from|far from|"
    "a field away from|a long step from|a short walk from|a hop from|"
    "at a respectful distance from|aloof from|estranged from|shy of|"
    "leaving a gap before|with a space before|with a clear gap before|westward of|west of|"
    "on the near side of|this side of|half a field from|a furlong from|a meadow's width from|"
    "a pasture away from|some rods from|a good stretch from|a fair step from|a long way from|"
    "a wide gap from|well removed from|far removed from|isolated from|standing clear of|"
    "set back from|spaced well from|at a remove from|with daylight between it and|"
    "with a gap before|with empty ground before|with bare ground before|"
    "with a stretch of ground before"
)
RIGHT_OF = (
    "right of|to the right of|some way right of|a little apart from|at a distance from|"
    "well to the right of|a short way from|apart from|some distance from|away from|"
    "separated from|a good way right of|clear of|well apart from|at some remove from|"
    "a stone's throw from|spaced out from|a few paces from|a fair distance from|"
    "some yards from|removed from|detached from|standing off from|distant from|"
    "a gap away from|at arm's length from|keeping its distance from|a way off from|"
    "across from|opposite|facing|over from|along from|beyond|eastward of|east of|"
    "on the far side of|beyond and right of|past|further on from|further along from|"
    "a furlong from|a meadow's width from|half a field from|a good stretch from|a long way from|"
    "well removed from|with daylight between it and|with bare ground between it and|set back from|"
    "isolated from"
)
ABOVE_LOW = (
    "above|over|just above|low over|close above|right above|directly over|skimming|"
    "a little above|barely above|hard above|skimming over|brushing over|hugging|scarcely above|"
    "only just above|grazing|skirting|shaving|low above|a touch above|a hair above|"
    "barely clearing|just clearing|sweeping over"
)
ABOVE_HIGH = (
    "above|over|high above|far above|well above|high over|way above|aloft over|"
    "far over|soaring above|riding high over|some way above|up above|high aloft over|far up above|"
    "soaring high over|wheeling high over|circling high above|lofty above|miles above|"
    "a long way above|heavenward of|up high over"
)
OVERHEAD = (
    "overhead|above it|over it|above|up above|in the sky above|aloft|in the air above it|"
    "on high|up high|high up|in the heavens|in the air|against the sky|above its top|"
    "just over it|right over it|up top|in the open sky|in the blue|overhead too|above the roof|"
    "above the top|atop the sky|in the firmament|in the welkin|among the clouds|in the ether|"
    "in the upper air|in the skies|across the sky|up in the blue|high overhead|"
    "far overhead|just overhead|hanging overhead|in the air overhead|skyward|heavenward|"
    "aloft above"
)
GROUND = (
    "on hatched ground|on a strip of hatched ground|on level ground|along the horizon|"
    "on flat ground|on a ruled baseline|on the ground line|on a line of earth|"
    "on a band of hatched earth|on even ground|along a flat horizon|on a hatched foreground|"
    "on a ruled strip of land|on open ground|on the flat|on a plain|on bare earth|"
    "on a level field|on a strip of land|on grassy ground|on dry land|on firm ground|"
    "along a low horizon|on the horizon line|on a lined foreground|on ruled earth|"
    "on a flat expanse|on a narrow strip of ground|on flat countryside|on the level"
)
SKY = (
    "against a lined sky|under a sky of faint strokes|against a streaked sky|"
    "in a sky of broken lines|before a ruled sky|against faint horizontal lines|"
    "in a hatched sky|under streaky skies|against a pale sky|"
    "against a sky of dashes|under a lightly ruled sky|against a sky drawn in fine lines|"
    "under a stripy sky|against a sky of thin dashes|under a banded sky|"
    "in a sky of faint ruling|against a washed-out sky|under a quiet sky|"
    "under a still sky|against a sky of broken strokes|beneath a ruled firmament"
)
BORDER = (
    "in a ruled border|within a double border|framed by a double line|in a plate border|"
    "inside a double rule|within a ruled frame|framed by two lines|in a black frame|"
    "inside a heavy border|boxed in by a double rule|with a double-ruled edge|"
    "inside a thick and a thin line|within a printed frame|with a plate mark|"
    "in a rectangular frame|inside a neat border|within a square frame|framed in black|"
    "with a thin inner rule|edged with a double line|bordered by two rules"
)
# The print's look, as `Look` measures it.
PAPER = {
    "dark": "yellowed|toned|tan|buff|darkened|browned|aged|tea-stained|sepia-toned|"
    "biscuit|oatmeal|parchment-coloured|dusky|ochre-tinged|sand-coloured|khaki|fawn|"
    "camel|tawny|honey-coloured|straw-yellow|nicotine-stained|foxed|sunburnt|"
    "time-darkened|mellowed|amber-tinted|caramel|butterscotch|brownish|yellowish|tobacco-coloured|"
    "snuff-coloured|ginger|cinnamon|nutmeg|toffee-coloured|biscuit-brown|walnut-stained|"
    "coffee-stained|smoke-stained",
    "mid": "cream|creamy|ivory|warm|off-white|beige|ecru|eggshell|parchment|straw-coloured|"
    "buttermilk|vellum|wheat-coloured|bone|linen|champagne|vanilla|oyster|"
    "cornsilk|flax|natural|unbleached|antique white|old lace|biscuit-cream|cream-coloured|"
    "warm white|custard|primrose|mushroom|taupe|putty|stone-coloured|sandstone|shell|"
    "seashell|porcelain-cream|pearl|clotted-cream",
    "pale": "pale|light|pale cream|bright|clean|whitish|pale ivory|milky|fresh|"
    "light cream|pearly|chalky|blanched|near-white|snowy|porcelain|alabaster|"
    "white|bleached|pristine|paper-white|pallid|wan|cool|clear|luminous|frosty|icy-white|"
    "lily-white|moon-pale|ghost-white|milk-white|chalk-white|bone-white|dove-grey|silver-white",
}
GRAIN = {
    "coarse": "grainy|coarse|speckled|rough|textured|mottled|flecked|gritty|pitted|"
    "granular|stippled|blotchy|sandy|freckled|toothy|noisy|dappled|dotted|spotty|"
    "peppered|fibrous|woolly|cloudy|uneven",
    "fine": "smooth|fine|even|soft|quiet|lightly grained|clean|plain|unblemished|satiny|"
    "silky|sleek|velvety|calm|polished|uniform|flawless|crisp",
}
PAPER_NOUNS = (
    "paper|paper|a sheet|stock|laid paper|wove paper|rag paper|card|a leaf|"
    "handmade paper|cotton paper|plate paper|india paper|rice paper|"
    "japan paper|cartridge paper|wrapping paper|board|cardstock|page|folio"
)
INK = (
    "brown ink|dark brown ink|sepia|brown-black ink|sepia ink|umber|bistre|dark ink|"
    "warm black ink|iron-gall ink|gall ink|burnt umber|chocolate-brown ink|"
    "brownish ink|black ink|russet ink|coffee-coloured ink|mahogany ink|"
    "raw umber|van dyke brown|bitumen-brown ink|peat-brown ink|tobacco-brown ink|"
    "liver-brown ink|earth-brown ink|chestnut-brown ink|cocoa-brown ink|"
    "deep brown|warm sepia|dark sepia|blackish brown|brownish black|tarry ink|"
    "rusty black|soot-brown ink|smoky brown|espresso ink|walnut-brown ink|oak-gall ink|"
    "bistre ink|sepia wash|hazel-brown ink|nut-brown ink|leather-brown ink|"
    "saddle-brown ink|tan ink|rust-brown ink|russet-brown ink|oxblood-brown ink|cordovan ink"
)
LINES = {
    "fine": "fine|delicate|thin|light|precise|crisp|neat|hairline|spidery|careful|"
    "dainty|feathery|wiry|meticulous|slender|slight|exact|tidy|scratchy|silvery|"
    "needle-thin|whisper-thin|gossamer|nimble|finicky|fussy|threadlike|filament-thin|wispy|"
    "whiskery|fastidious|attentive|scrupulous|exacting|painstaking|watchmaker's",
    "bold": "bold|heavy|thick|strong|firm|broad|dark|vigorous|robust|confident|sturdy|"
    "emphatic|weighty|forceful|assertive|muscular|blunt|chunky|hearty|beefy|"
    "generous|rich|decisive|energetic|punchy|deep|meaty|brawny|lusty|gutsy|full-blooded|thick-set|"
    "stout-lined|broad-nibbed|sweeping|swaggering",
}
HATCHING = {
    "close": "close|dense|tight|closely spaced|packed|thick|crowded|rich|fine-meshed|"
    "compact|heavy|busy|intense|concentrated|serried|tightly packed|close-knit|"
    "close-set|thickly laid|densely laid|solid|woven|meshed|cross-woven|compacted|concentrated|"
    "saturated|clotted|bunched|huddled|thronging",
    "open": "open|loose|widely spaced|sparse|airy|light|spare|wide|relaxed|generous|"
    "breezy|thin|gappy|spacious|economical|rarefied|loosely laid|widely set|"
    "far-spaced|sketchy|lean|scattered|strewn|thinned|thinly laid|sparing|frugal|stingy|tentative|"
    "hesitant|wide-set",
}
SLANT = {
    "right": "diagonal|slanting|oblique|falling to the right|down to the right|"
    "from top left to bottom right|left-to-right|raking|sloping|descending|"
    "backslash-like|downhill|forty-five-degree|angled|tilted|canted|skewed",
    "left": "diagonal|slanting|oblique|falling to the left|down to the left|"
    "from top right to bottom left|right-to-left|raking|sloping|descending|"
    "slash-like|forward-sloping|forty-five-degree|angled|tilted|canted|skewed",
}
HATCH_NOUNS = (
    "hatching|cross-hatching|linework|strokes|lines|shading|hatch lines|parallel lines|"
    "burin work|engraved lines|tooling|line shading|crosshatching|graver work|cuts|"
    "incisions|furrows|grooves|scoring|ruling|striations|stripes|dashes|marks|"
    "hatches|cross-hatches|etched lines|needlework|lattice|mesh|texture|pattern|strokework|"
    "crosshatch|hatchwork|line work|scoring marks|engraver's lines|graver lines|burin lines|"
    "line texture|tone lines|tonal lines|shading lines|ruled lines|cross-ruling|stipple|flicks|"
    "nicks|ticks"
)
TECHNIQUES = (
    "engraving|etching|print|line engraving|copperplate engraving|steel engraving|"
    "intaglio print|ink drawing|pen drawing|illustration|plate|woodcut|wood engraving|"
    "drypoint|book illustration|engraved plate|etched plate|vignette|sketch|pen-and-ink drawing|"
    "line drawing|copper engraving|intaglio|impression|proof|lithograph|monochrome print|"
    "hatched drawing|engraved illustration|print from a plate|restrike|plate impression|"
    "picture|image|drawing|artwork|rendering|depiction|print on paper|engraved print|"
    "etched print|copperplate|steel plate|burin engraving|bookplate|frontispiece|"
    "tailpiece|headpiece|plate illustration|topographical print|landscape print|"
    "reproduction|facsimile|hand-pulled print|graphic|black-and-white print|"
    "monochrome engraving|line etching|print in the old manner|period engraving|"
    "chapbook illustration|broadside print|almanac illustration|magazine engraving|"
    "gazetteer plate|guidebook vignette|county history plate|travel book engraving|"
    "penny magazine cut|school primer picture|trade card|postcard print|"
    "stereotype print|electrotype|photogravure|heliogravure|half-plate|"
    "mezzotint|aquatint|soft-ground etching|stipple engraving|collotype|"
    "linocut|relief print|line block|process block|cliche|line cut|burin print|graver print|"
    "copper print|steel print|intaglio engraving|intaglio etching|pen sketch|ink sketch|"
    "brown-ink drawing|sepia drawing|sepia print|sepia engraving|toned print|old print|"
    "antique print|antiquarian print|victorian engraving|georgian engraving|regency print|"
    "eighteenth-century engraving|nineteenth-century engraving|period print|architectural print|"
    "picturesque view|prospect|view|veduta|capriccio|topographical view|landscape etching|"
    "landscape engraving|rural print|pastoral print|emblem|emblem print|devotional print|"
    "souvenir print|keepsake engraving|annual illustration|gift-book engraving|vignette engraving|"
    "chapter heading|headband|fleuron|printer's ornament|decoration|title vignette|"
    "spot illustration|cut|block|woodblock print|xylograph|chalcograph|plate from a book|"
    "book plate|album plate|portfolio plate|atlas plate|map vignette|cartouche|cartouche vignette|"
    "margin vignette|marginal drawing|gravure|line gravure|stipple print|dotted print|"
    "crayon manner print|chalk manner print|pen-and-wash|wash drawing|brush drawing|quill drawing|"
    "reed-pen drawing|nib drawing|silverpoint|metalpoint|graphite drawing|pencil drawing|"
    "charcoal sketch|scratchboard|scraperboard|block print|chiaroscuro woodcut|"
    "white-line engraving|end-grain engraving|boxwood engraving|zinc etching|zincograph|"
    "copper etching|brass engraving|niello print|trial proof|artist's proof|state proof|"
    "counterproof|offprint|pull|specimen plate|pattern-book plate|emblem-book cut|herbal cut|"
    "bestiary cut|psalter cut|hornbook picture|battledore picture|catchpenny print"
)
FRAMES = (
    "of|showing|depicting|with|picturing|featuring|portraying|representing|illustrating|"
    "presenting|capturing|rendering|documenting|recording|displaying|containing|sketching|evoking|"
    "celebrating|commemorating|observing|surveying|framing|offering|revealing|exhibiting|"
    "laying out|charting|memorialising|recalling|conjuring|summoning up|setting out|"
    "bringing together|arranging|grouping|composing|picking out|singling out|studying|describing|"
    "narrating|relating|telling of"
)
# Settings, each named from the subjects that the scene has.
SETTINGS = {
    "ship": "harbour|shore|coast|waterfront|seaside|quay|port|bay|estuary|anchorage|"
    "landing|strand|beach|wharf|inlet|cove|haven|dockside|marina|mooring|seafront|"
    "fishing village|coastline|sea shore|roadstead|river mouth|tideway|foreshore|"
    "harbourside|jetty|pier|slipway|creekside|shipyard|dockyard|seaport|sandbank|sound|firth|kyle|"
    "loch|sea loch|sea lane|shipping lane|offing|open sea|high seas|sea road|"
    "channel crossing|harbour mouth|harbour bar|tidal flats|mudflats|saltings|shingle beach|"
    "sand spit|lagoon|backwater harbour",
    "windmill": "countryside|farmland|polder|fields|lowlands|flatlands|meadows|plain|"
    "farm|rural scene|dykes|pasture|cornfields|grainfields|heath|marshland|fenland|"
    "fens|levels|wheatfields|prairie land|steppe|open country|arable land|downs|"
    "water meadows|reclaimed land|dyke country|broads|flat country|wold|wolds|champaign|"
    "champion country|open field|strip fields|furlongs|acre strips|cornland|"
    "barley fields|rye fields|hayfields|haylands|stubble fields|marsh country|carrs|washes|ings",
    "mountain": "highlands|valley|uplands|foothills|alpine scene|pass|moorland|glen|"
    "alpine landscape|wilderness|rocky landscape|slopes|snowfields|high country|"
    "alpine valley|alpine pasture|dale|gorge country|wild country|upland country|"
    "high pasture|alpine meadow|rough country|badlands|backcountry|hinterland|"
    "cordillera|range|fastness|"
    "screes|corries|cirques|cwms|combes|coombes|passes|defiles",
    "church": "village|parish|hamlet|churchyard|town|settlement|village green|square|"
    "community|chapelry|close|borough|township|burgh|precinct|graveyard|cemetery|"
    "glebe|parish grounds|market town|pilgrim route|"
    "monastic grounds|holy ground|lych-gate|burial ground|"
    "kirkyard|kirkton",
    "house": "village|hamlet|lane|street|settlement|"
    "village street|yard|garden|country lane|row|suburb|green|neighbourhood|"
    "homeland|countryside|cul-de-sac|byway|estate|hamlet green|roadside|"
    "farmyard|courtyard|rural lane|back road|village edge|outskirts|smallholding|"
    "homefield|kitchen garden|allotments|village pump|village well|"
    "back lane|drove road|green lane|hollow way|holloway|sunken lane",
    "tower": "castle grounds|fortress|castle|bailey|ramparts|battlements|"
    "fortification|garrison|outpost|border post|walled town|frontier|border|"
    "marches|fortified town|bulwark|palisade|defences|castle ward|moat|"
    "lookout point|vantage point|sea wall|old town walls|postern|curtain wall|"
    "outer ward|inner ward|motte|motte and bailey|earthworks|siege lines|"
    "march country|debatable land|borderland|watch post",
    "bridge": "river crossing|river|stream|canal|ford|riverbank|waterway|gorge|ravine|"
    "riverside|creek|millrace|brook|towpath|ferry point|river valley|floodplain|"
    "watercourse|backwater|rivulet|beck|burn|channel|dell|hollow|dingle|gully|millpond|"
    "weir|lock|riffle|shallows|river bend|meander|oxbow|water meadow|withy beds|"
    "reed beds|riverbank path|tow path|haling way",
    "tree": "park|grove|woodland|orchard|meadow|clearing|glade|copse|parkland|field|"
    "garden|common|green|avenue|wood|spinney|thicket|arboretum|pleasure garden|"
    "deer park|coppice|woodlands|forest edge|dell|greensward|lawn|heathland|hedgerow|field margin|"
    "field corner|shelterbelt|wood pasture|wood edge|coppice wood|chase|forest ride|ride|walk|"
    "promenade|boulevard|arbour",
    "horse": "pasture|paddock|field|farm|meadow|stable yard|grazing land|common|ranch|"
    "stud farm|grassland|range|enclosure|corral|prairie|racecourse|showground|"
    "hunting ground|bridle path|farmyard|stockyard|livery yard|grazing|gallops|training ground|"
    "riding school|fairground|grass paddock|hayfield|"
    "water meadow grazing",
}
TIMES = {
    "sun": "day|sunny day|bright day|morning|midday|summer day|afternoon|noon|fine day|"
    "clear day|daytime|forenoon|summer morning|high noon|spring day|dry day|hot day|"
    "cloudless day|glorious day|lazy afternoon|fair day|sunny morning|long day|sunshine",
    "crescent": "night|evening|dusk|twilight|nightfall|late evening|nocturne|early night|"
    "gloaming|small hours|eventide|half-light|early evening|dead of night|sundown|"
    "moonrise|deep night|vesper hour|dark",
    "full": "night|moonlit night|evening|nocturne|midnight|clear night|night scene|"
    "late night|bright night|moonrise|still night|silent night|autumn night|"
    "winter night|calm night|starless night|quiet night|dark",
}
# The annotators' own voice: non-visual slots that no scene predicts.
VOICE_OPENERS = {
    "detailed": "||||||||this picture shows|here we see|we can see|the image shows|there is|"
    "i can see|in this picture there is|pictured is|this drawing shows|you can see|"
    "shown here is|visible is|the scene shows|it shows|here is|this is|depicted is|"
    "we are looking at|the artist shows|the engraver shows|on view is|i notice|"
    "i would describe this as|my guess is|it seems to be|in the picture|in view is|"
    "what we have here is|i believe this shows|it appears to show|this seems to show|"
    "looking closely, there is|on closer inspection, there is|if you look, there is|"
    "the picture contains|the drawing contains|the print contains|in the frame there is|"
    "the subject is|the subject here is|the main subject is|the focus is|the engraving features|"
    "the print features|depicted here is|rendered here is|portrayed is|drawn here is|"
    "sketched here is|captured here is|to my eye this shows|to me it shows|as i see it, there is|"
    "honestly, it shows|frankly, there is|obviously there is|clearly there is|plainly there is|"
    "at first sight, there is|at first glance, there is|in essence, there is",
    "technique": "|||a fine old|an old|an antique|a vintage|a lovely|a charming|a quaint|"
    "a detailed|a nice|a pretty|a simple|a handsome|a fine|a rare|a curious|an elegant|"
    "a delightful|an attractive|a pleasing|a modest|a neat|a skilful|a careful|"
    "an unusual|a classic|a beautiful|a well-made|a crisp|a typical|a humble|"
    "a small but fine|a nicely done|a fine example of an|a wonderful|a marvellous|a splendid|"
    "a superb|an exquisite|a dainty|a sweet|an endearing|a winsome|a homely|a sober|a restrained|"
    "a spirited|a lively|a vivid|an evocative|an atmospheric|a moody|a wistful|a nostalgic|"
    "a melancholy|a romantic|a sentimental|a whimsical|a naive|an artless|a faithful|"
    "an accomplished|a masterly|a deft|a competent|a workmanlike|a journeyman's|a collector's|"
    "a treasured|a cherished|a prized|a forgotten|an obscure|a scarce|a sought-after|a desirable|"
    "a choice|a select|a superior|an excellent|a first-rate",
    "reordered": "|||||||||we see|there is|looking at it,|at a glance,|in this one,|"
    "i think|it looks like|apparently|from what i can tell,|as far as i can see,|"
    "first of all,|to begin with,|if i read it right,|in short,|basically,|"
    "simply put,|overall,|from the top,|from the sky down,|reading it top down,|top to bottom,|"
    "from above,|starting at the top,|starting with the sky,|scanning down,|"
    "scanning right to left,|right to left,|from the right,|working leftward,|working down,|"
    "roughly,|broadly,|briefly,|in brief,|in a nutshell,|all in all,|put simply,|to sum up,|"
    "in summary,|essentially,|mainly,|chiefly,|principally,|for the most part,|as it happens,|"
    "interestingly,|oddly,|curiously,|notably,|tellingly,|charmingly,|pleasingly,|sweetly,",
}
# What the annotator thinks of the print (before the technique: "a quaint etching") and how
# sure or how taken they are ("evidently,"): their voice, not the scene's.
VOICE_EPITHETS = (
    "lovely|charming|quaint|pretty|picturesque|peaceful|quiet|calm|serene|tranquil|idyllic|"
    "bucolic|pastoral|arcadian|delightful|pleasant|agreeable|appealing|attractive|enchanting|"
    "bewitching|captivating|beguiling|fetching|engaging|winsome|endearing|adorable|cute|sweet|"
    "dainty|precious|exquisite|refined|cultivated|tasteful|elegant|graceful|stylish|polished|"
    "accomplished|skilled|skilful|masterful|masterly|brilliant|dazzling|stunning|striking|"
    "arresting|remarkable|notable|noteworthy|memorable|unforgettable|haunting|evocative|"
    "atmospheric|moody|brooding|sombre|melancholy|wistful|poignant|touching|moving|stirring|"
    "affecting|gentle|subtle|understated|restrained|sober|modest|unassuming|humble|homely|"
    "honest|sincere|heartfelt|earnest|simple|unfussy|uncluttered|spare|minimal|economical|lucid|"
    "legible|careful|meticulous|painstaking|diligent|conscientious|thorough|faithful|accurate|"
    "truthful|naive|artless|innocent|childlike|whimsical|playful|fanciful|quirky|eccentric|"
    "curious|peculiar|strange|unusual|uncommon|rare|scarce|unique|singular|distinctive|"
    "characterful|spirited|lively|vivid|vibrant|energetic|dynamic|confident|assured|vigorous|"
    "hearty|jolly|cheerful|cheery|merry|happy|joyful|jovial|genial|friendly|warm|cosy|inviting|"
    "welcoming|homey|comforting|reassuring|soothing|restful|relaxing|dreamy|dreamlike|nostalgic|"
    "sentimental|romantic|poetic|lyrical|musical|harmonious|well-composed|well-balanced|orderly|"
    "tidy|neat|smart|handsome|comely|bonny|good-looking|fine-looking|beautiful|gorgeous|glorious|"
    "splendid|superb|magnificent|marvellous|wonderful|terrific|fabulous|fantastic|excellent|"
    "superior|first-rate|first-class|top-notch|choice|select|classic|timeless|traditional|"
    "old-fashioned|old-world|antiquated|vintage|retro|period|historic|historical|antique|"
    "venerable|treasured|cherished|prized|beloved|favourite|familiar|typical|characteristic|"
    "representative|standard|ordinary|everyday|workaday|humdrum|unremarkable|competent|decent|"
    "respectable|passable|serviceable|adequate|acceptable|tolerable|middling|crude|rudimentary|"
    "basic|elementary|primitive|folksy|homespun|amateurish|provincial|unpretentious|unaffected|"
    "ingenuous|guileless|wholesome|innocuous|harmless|inoffensive|soft-spoken|mild|placid|sleepy|"
    "drowsy|lazy|languid|leisurely|unhurried|measured|deliberate|considered|thoughtful|"
    "reflective|pensive|contemplative|meditative|solemn|grave|serious|stately|dignified|noble|"
    "lofty|grand|imposing|impressive|ambitious|assertive|emphatic|forthright|direct|frank|blunt|"
    "candid|matter-of-fact|prosaic|literal|documentary|sober-minded|no-nonsense|straightforward|"
    "uncomplicated|unadorned|austere|ascetic|severe|stark|bleak|lonely|desolate|forlorn|"
    "wistful-looking|haunting-looking|ghostly|eerie|uncanny|mysterious|enigmatic|puzzling|"
    "intriguing|fascinating|absorbing|compelling|gripping|riveting|enthralling|spellbinding|"
    "magical|fairy-tale|storybook|legendary|mythic|epic|heroic|grandiose|theatrical|dramatic|"
    "operatic|flamboyant|showy|ornate|fussy|busy|crowded|cluttered|quirky-looking|droll|comical|"
    "humorous|witty|amusing|entertaining|diverting|charming-looking|twee|kitsch|chocolate-box|"
    "sugary|saccharine|mawkish|cloying|sweet-natured|good-natured|kindly|benign|benevolent|"
    "gentle-looking|trustworthy|dependable|reliable|solid|sound|capable"
)
VOICE_ADVERBS = (
    "evidently|apparently|seemingly|clearly|plainly|obviously|undoubtedly|unmistakably|certainly|"
    "surely|presumably|probably|possibly|perhaps|maybe|arguably|admittedly|frankly|honestly|"
    "candidly|truthfully|simply|basically|essentially|fundamentally|mostly|largely|mainly|"
    "chiefly|primarily|principally|generally|broadly|roughly|loosely|overall|altogether|"
    "naturally|predictably|typically|characteristically|classically|traditionally|conventionally|"
    "unsurprisingly|surprisingly|remarkably|strikingly|notably|noticeably|happily|luckily|"
    "fortunately|pleasingly|charmingly|delightfully|sweetly|beautifully|nicely|neatly|tidily|"
    "modestly|quietly|calmly|serenely|peacefully|gently|softly|subtly|starkly|boldly|vividly|"
    "sharply|crisply|cleanly|carefully|meticulously|lovingly|tenderly|fondly|warmly|cheerfully|"
    "merrily|playfully|whimsically|oddly|curiously|strangely|peculiarly|unusually|interestingly|"
    "intriguingly|tellingly|revealingly|quaintly|prettily|handsomely|elegantly|gracefully|"
    "simply enough|sure enough|as expected|at heart|in the main|by and large|on the whole|"
    "as a whole|in general|in sum|in effect|in practice|in truth|in fact|indeed|of course|"
    "naturally enough|unsurprisingly enough|to be fair|to be honest|to be sure|if anything|"
    "if you ask me|in my view|in my opinion|to my mind|i reckon|i suppose|i guess|i imagine|"
    "i gather|i'd say|so to speak|as it were|more or less|pretty much|all told|at bottom|at root|"
    "at a guess|on reflection|on balance|without doubt|no doubt|doubtless|assuredly|decidedly|"
    "definitely|positively|undeniably|indisputably|incontestably|unquestionably|manifestly|"
    "patently|palpably|visibly|demonstrably|recognisably|identifiably|distinctly|markedly|"
    "conspicuously|prominently"
)
TERSE_JOINS = ",|and|,|with|plus|as well as|together with|along with|and also"
NUMBERS = {
    1: "a|one|a single|a lone|a solitary|just one|only one",
    2: "two|a pair of|a couple of|two|two",
    3: "three|a trio of|three|a flock of three|a group of three|a line of three|"
    "a little flock of three|a band of three|a party of three|a skein of three",
}
GROUND_NUMBERS = {
    2: "two|a pair of|two|a couple of",
    3: "three|three|a row of three|a group of three|a trio of",
}

# The steepness for the details that few captions give (what a subject or its parts look like,
# its pose, the flight, the paper, the setting): each is said rarely, so flatter weights let each
# of its many words turn up now and then, as a detail's rare words do in real captions.
DETAIL_STEEP = 0.7

_VOWEL = re.compile(r"^(?:[aeio]|u(?!ni|se|su|ro)|hour|honest|heir)")
_IRREGULAR_PLURALS = {
    "merchantman": "merchantmen",
    "goose": "geese",
    "hoy": "hoys",
    "foot": "feet",
    "man-of-war": "men-of-war",
    "sloop-of-war": "sloops-of-war",
    "chapel-of-ease": "chapels-of-ease",
}

# ------------------------------------------------------------------------------- writing


@functools.cache
def _options(text: str) -> tuple[str, ...]:
    """The alternatives of a lexicon entry ("" is an option: say nothing)."""
    return tuple(option.strip() for option in text.split("|"))


@functools.cache
def _cumulative(n: int, steep: float) -> tuple[float, ...]:
    """Cumulative Zipfian weights 1/(rank+1)^steep of `n` alternatives."""
    return tuple(itertools.accumulate(1.0 / (rank + 1) ** steep for rank in range(n)))


def plural(noun: str) -> str:
    """The plural of a noun phrase: its last word inflected ("sailing ship" -> "sailing
    ships", "church" -> "churches", "merchantman" -> "merchantmen")."""
    head, _, last = noun.rpartition(" ")
    if last in _IRREGULAR_PLURALS:
        inflected = _IRREGULAR_PLURALS[last]
    elif last.endswith(("ch", "sh", "s", "x")):
        inflected = last + "es"
    elif last.endswith("y") and last[-2:-1] not in tuple("aeiou"):
        inflected = last[:-1] + "ies"
    else:
        inflected = last + "s"
    return f"{head} {inflected}" if head else inflected


def article(phrase: str) -> str:
    """The article, "a" or "an", before `phrase`."""
    return "an" if _VOWEL.match(phrase) else "a"


class _Writer:
    """One annotator writing one caption: Zipfian word choice, and every span tagged as
    grounded in the scene or as the annotator's voice."""

    def __init__(self, rng: random.Random, name_steep: float, steep: float) -> None:
        self.rng, self.name_steep, self.steep = rng, name_steep, steep
        self.looks = 0.0  # the least chance of an adjective for what a subject looks like
        self.own_sizes = 0.3  # the chance that a size word is one only the subject's kind takes
        self.spans: list[tuple[str, bool]] = []  # (text, is voice)

    def pick(self, entry: str, steep: float | None = None) -> str:
        """One alternative of a lexicon entry, the earlier ones more often."""
        options = _options(entry)
        weights = _cumulative(len(options), self.steep if steep is None else steep)
        return options[bisect(weights, self.rng.random() * weights[-1])]

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def say(self, text: str, voice: bool = False) -> None:
        if text:
            self.spans.append((text, voice))

    def finish(self, end: str) -> None:
        """Write the caption: spans joined, commas attached, the first letter in upper case."""
        joined = " ".join(text for text, _ in self.spans).replace(" ,", ",").replace(" :", ":")
        joined = re.sub(r"\s+", " ", re.sub(r",(\s*[,;:])+", ",", joined)).strip(" ,;:")
        self.caption = joined[:1].upper() + joined[1:] + end

    def tokens(self) -> tuple[int, int]:
        """(tokens the scene cannot predict: the voice slots', all tokens), on the statistics'
        word rule."""
        voice = sum(len(words(text)) for text, is_voice in self.spans if is_voice)
        return voice, sum(len(words(text)) for text, _ in self.spans)


# ------------------------------------------------------------------------- noun phrases

_DETERMINERS = frozenset({"a", "an", "its", "one", "two", "three", "four"})


def _with_article(count_words: str, rest: str) -> str:
    """`count_words` before `rest`, "a" becoming "an" where `rest` starts with a vowel."""
    if count_words in ("a", "an"):
        return f"{article(rest)} {rest}"
    return f"{count_words} {rest}"


def _head(w: _Writer, thing: _Thing) -> str:
    """The noun (with any words it is made of) naming `thing`, singular or plural."""
    if thing.kind == "bird":
        noun = w.pick(BIRD_NOUNS, w.name_steep)
    elif thing.kind == "sun":
        noun = w.pick(SUN)
    elif thing.kind == "moon":
        noun = w.pick(MOON[thing.phase or "full"])
    else:
        noun = w.pick(KINDS[thing.kind].nouns, w.name_steep)
    return plural(noun) if thing.count > 1 else noun


def _look(w: _Writer, thing: _Thing) -> str:
    if thing.kind == "bird":
        return w.pick(BIRD_LOOKS, DETAIL_STEEP)
    if thing.kind in KINDS:
        return w.pick(KINDS[thing.kind].looks, DETAIL_STEEP)
    return ""


def _np(w: _Writer, thing: _Thing, detail: float, count: int | None = None) -> str:
    """A noun phrase naming `thing` with its count: "a small single-masted brig", "three
    gulls", "the sun"; `detail` is the chance of each optional adjective."""
    count = thing.count if count is None else count
    noun = _head(w, thing) if count == thing.count else plural(_head(w, thing))
    adjectives: list[str] = []
    if thing.size and detail and w.chance(0.1 + 0.6 * detail):
        own = KIND_SIZES.get(thing.kind, {}).get(thing.size)
        if own and w.chance(w.own_sizes):
            adjectives.append(w.pick(own, DETAIL_STEEP))
        else:
            adjectives.append(w.pick(SIZES[thing.size]))
    if w.chance(max(detail, w.looks)):
        look = _look(w, thing)
        if look and not set(words(look)) & set(words(" ".join([*adjectives, noun]))):
            adjectives.append(look)
    rest = " ".join([*adjectives, noun])
    if thing.kind == "sun" and count == 1 and w.chance(0.7):
        return f"the {rest}"
    numbers = NUMBERS if thing.kind == "bird" or count == 1 else GROUND_NUMBERS
    return _with_article(w.pick(numbers[count], 3.0 if count == 1 else 2.0), rest)


def _part(w: _Writer, part: _Part) -> str:
    """A part of a subject, maybe with one more adjective: "a slender mast"."""
    phrase = w.pick(part.nouns, DETAIL_STEEP)
    first, _, rest = phrase.partition(" ")
    if first in _DETERMINERS and rest and " " not in rest and w.chance(0.5):
        look = w.pick(part.looks, DETAIL_STEEP)
        if look not in words(rest):
            if first in ("a", "an"):
                return f"{article(look)} {look} {rest}"
            return f"{first} {look} {rest}"
    return phrase


def _parts(w: _Writer, thing: _Thing, detail: float) -> str:
    """With one or two drawn parts of a ground subject ("with a slender mast"), or nothing."""
    if thing.kind not in KINDS or not w.chance(detail):
        return ""
    parts = list(KINDS[thing.kind].parts)
    w.rng.shuffle(parts)
    chosen = [_part(w, parts[0])]
    if len(parts) > 1 and w.chance(detail * 0.5):
        chosen.append(_part(w, parts[1]))
    return "with " + " and ".join(chosen)


def _ground_np(w: _Writer, thing: _Thing, detail: float) -> str:
    """A ground subject described: noun phrase, maybe a pose, a place and parts."""
    spans = [_np(w, thing, detail)]
    if w.chance(detail * 0.4):
        spans.append(w.pick(KINDS[thing.kind].poses, DETAIL_STEEP))
    if w.chance(detail * 0.5):
        spans.append(w.pick(PLACES[thing.place]))
    spans.append(_parts(w, thing, detail))
    return " ".join(span for span in spans if span)


def _link(w: _Writer, facts: _Facts, i: int, reverse: bool = False) -> str:
    """The relation between ground[i] and ground[i + 1], read left to right or reversed."""
    if facts.links[i] == "beside":
        if facts.gaps[i] < 0 and w.chance(0.3):
            return w.pick(OVERLAP)
        return w.pick(BESIDE)
    return w.pick(RIGHT_OF if reverse else LEFT_OF)


def _birds_clause(w: _Writer, facts: _Facts, detail: float, last: bool) -> str:
    """The flock after the subject it flies over: "with three gulls wheeling above it"."""
    assert facts.birds is not None
    spans = [_np(w, facts.birds, detail)]
    if w.chance(0.2 + detail * 0.5):
        spans.append(w.pick(BIRD_FLIGHT, DETAIL_STEEP))
    if facts.birds.count > 1 and w.chance(detail * 0.5):
        spans.append(w.pick(FLOCK_SHAPES[facts.birds.count]))
    spans.append(w.pick(OVERHEAD))
    lead = w.pick("with|,|and") if last else "with"
    return " ".join([lead, *spans])


def _light_clause(w: _Writer, facts: _Facts, detail: float) -> str:
    """The sun or moon over everything: "under a crescent moon", ", the sun shining in the
    upper left"."""
    assert facts.light is not None
    light = facts.light
    np_ = _np(w, light, detail)
    looks = SUN_LOOKS if light.kind == "sun" else MOON_LOOKS[light.phase or "full"]
    extra = w.pick(looks, DETAIL_STEEP) if w.chance(detail * 0.4) else ""
    spot = w.pick(SKY_SPOTS[light.place]) if w.chance(detail * 0.6) else ""
    if w.chance(0.55):
        return " ".join(s for s in (w.pick(UNDER[light.kind]), np_, extra, spot) if s)
    verb = w.pick(LIGHT_VERBS[light.kind])
    return ", " + " ".join(s for s in (np_, extra, verb, spot) if s)


def _chain(
    w: _Writer, facts: _Facts, detail: float, reverse: bool = False, listing: bool = False
) -> None:
    """The ground subjects in a row with their relations (or, `listing`, only in their order:
    "a windmill, a cottage and a tree"), the flock after its subject."""
    order = range(len(facts.ground) - 1, -1, -1) if reverse else range(len(facts.ground))
    for step, i in enumerate(order):
        if listing and step:
            w.say("and" if step == len(facts.ground) - 1 else ",")
        elif step:
            w.say(_link(w, facts, i if reverse else i - 1, reverse))
        w.say(_ground_np(w, facts.ground[i], detail))
        if facts.birds is not None and i == facts.anchor:
            w.say(_birds_clause(w, facts, detail, last=step == len(facts.ground) - 1))


def _look_tail(w: _Writer, look: Look) -> str:
    """How the print is made, as its look shows: "in fine diagonal hatching on cream paper"."""
    lines = w.pick(LINES["fine" if look.line < 0.0105 else "bold"], DETAIL_STEEP)
    hatching = w.pick(HATCHING["close" if look.spacing < 0.0195 else "open"], DETAIL_STEEP)
    slant = w.pick(SLANT["right" if look.angle < 90 else "left"])
    tone = "pale" if look.tint > 1.5 else "dark" if look.tint < -5.5 else "mid"
    paper = f"{w.pick(PAPER[tone], DETAIL_STEEP)} {w.pick(PAPER_NOUNS)}"
    if w.chance(0.5):
        paper = f"{w.pick(GRAIN['coarse' if look.grain > 7 else 'fine'], DETAIL_STEEP)} {paper}"
    choice = w.rng.randrange(4)
    if choice == 0:
        return f"in {w.pick(f'{lines}|{hatching}')} {slant} {w.pick(HATCH_NOUNS)}"
    if choice == 1:
        return f"in {w.pick(INK)} on {paper}"
    if choice == 2:
        return f"with {hatching} {w.pick(HATCH_NOUNS)} on {paper}"
    return f"drawn in {lines} lines of {w.pick(INK)}"


def _scenery(w: _Writer, detail: float) -> None:
    """Optional details of the ground, the sky, the border or the print."""
    for entry, p in ((GROUND, 0.15), (SKY, 0.1), (BORDER, 0.06)):
        if w.chance(p * detail):
            w.say(("," if w.chance(0.3) else "") + " " + w.pick(entry))


# ------------------------------------------------------------------------------ annotators


def _terse(w: _Writer, facts: _Facts) -> None:
    """Subjects and counts only, grouped by kind: "Two boats and a chapel under the sun"."""
    groups: dict[str, list[_Thing]] = {}
    for thing in facts.ground:
        groups.setdefault(thing.kind, []).append(thing)
    phrases = [_np(w, things[0], 0.0, count=len(things)) for things in groups.values()]
    if facts.birds is not None:
        phrases.append(_np(w, facts.birds, 0.05))
    for k, phrase in enumerate(phrases):
        if k:
            w.say("and" if k == len(phrases) - 1 else w.pick(TERSE_JOINS, 2.0))
        w.say(phrase)
    if facts.light is not None:
        w.say(w.pick("under|and|with|beneath|below"))
        w.say(_np(w, facts.light, 0.05))


def _detailed(w: _Writer, facts: _Facts) -> None:
    """Everything, with parts, places and the scenery: "We can see a tall crenellated tower
    with narrow windows on the left beside a cottage ..."."""
    detail = (0.14, 0.05, 0.02)[len(facts.ground) - 1]
    w.looks = 0.25
    if w.chance(0.15):
        w.say(w.pick(VOICE_ADVERBS, 0.8) + ",", voice=True)
    else:
        w.say(w.pick(VOICE_OPENERS["detailed"], 1.4), voice=True)
    _chain(w, facts, detail, listing=w.chance(0.5))
    if facts.light is not None:
        w.say(_light_clause(w, facts, detail))
    _scenery(w, detail)
    if w.chance(0.1):
        w.say(", " + _look_tail(w, facts.look))


def _setting(w: _Writer, facts: _Facts) -> str:
    """A setting named from one of the scene's subjects and the light."""
    kind = w.rng.choice([thing.kind for thing in facts.ground])
    place = w.pick(SETTINGS[kind], DETAIL_STEEP)
    if facts.light is not None and w.chance(0.4):
        time_of_day = TIMES["sun" if facts.light.kind == "sun" else facts.light.phase or "full"]
        return f"{place} at {w.pick(time_of_day)}" if w.chance(0.5) else f"{place} scene"
    return place


def _technique(w: _Writer, facts: _Facts) -> None:
    """The technique and the setting first: "An etching of a harbour: a brig beside ..."."""
    opener = w.pick(VOICE_OPENERS["technique"], 2.0)
    technique = w.pick(TECHNIQUES)
    if opener:
        w.say(opener, voice=True)
        w.say(technique)
    elif w.chance(0.3):
        epithet = w.pick(VOICE_EPITHETS, 0.8)
        w.say(f"{article(epithet)} {epithet}", voice=True)
        w.say(technique)
    else:
        w.say(_with_article("a", technique))
    if w.chance(0.15):
        w.say(w.pick("of|showing|depicting"))
        w.say(_with_article("a", _setting(w, facts)) + w.pick(":|,|:|;"))
    else:
        w.say(":" if w.chance(0.25) else w.pick(FRAMES))
    if w.chance(0.95):
        _terse(w, facts)
    else:
        _chain(w, facts, 0.05)
        if facts.light is not None:
            w.say(_light_clause(w, facts, 0.05))
    if w.chance(0.06):
        w.say(", " + _look_tail(w, facts.look))


def _reordered(w: _Writer, facts: _Facts) -> None:
    """From the sky down and right to left: "Under a crescent moon, a windmill to the right of
    a cottage, with two gulls overhead"."""
    if w.chance(0.15):
        w.say(w.pick(VOICE_ADVERBS, 0.8) + ",", voice=True)
    else:
        w.say(w.pick(VOICE_OPENERS["reordered"], 1.5), voice=True)
    if facts.light is not None:
        light = facts.light
        spot = w.pick(SKY_SPOTS[light.place]) if w.chance(0.15) else ""
        w.say(" ".join(s for s in (w.pick(UNDER[light.kind]), _np(w, light, 0.1), spot) if s))
        w.say(",")
    _chain(w, facts, 0.05, reverse=True, listing=w.chance(0.6))
    if w.chance(0.1):
        w.say(w.pick(GROUND))


def _legacy(w: _Writer, facts: _Facts) -> None:
    """The earlier system's style: "An engraving depicting a small ship beside two birds above
    a tall tower under a crescent moon", with its words mostly the plainest."""
    w.say(LEGACY_PREFIX)
    w.own_sizes = 0.0  # the earlier system knew only the common size words
    for i, thing in enumerate(facts.ground):
        if i:
            w.say(_link(w, facts, i - 1))
        if facts.birds is not None and i == facts.anchor:
            w.say(_np(w, facts.birds, 0.05))
            w.say(w.pick(ABOVE_HIGH if facts.lift > 0.065 else ABOVE_LOW))
        w.say(_np(w, thing, 0.1))
    if facts.light is not None:
        w.say(w.pick(UNDER[facts.light.kind]))
        w.say(_np(w, facts.light, 0.05))


# Each annotator's Zipfian steepness for the names of ground subjects and birds (whose lists run
# deepest), and for every other word.
_WRITERS = {
    "terse": (_terse, 1.4, 1.6),
    "detailed": (_detailed, 0.9, 1.05),
    "technique": (_technique, 1.05, 1.2),
    "reordered": (_reordered, 1.15, 1.3),
    "legacy": (_legacy, 2.2, 2.5),
}


def caption_rng(seed: int, index: int) -> random.Random:
    """The captions' own random numbers for item `index`: hashed apart from the drawing's, so
    the words never change a pixel and the pixels never change a word."""
    digest = hashlib.sha256(f"mmlib.language:{seed}:{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _written(scene: SceneLike, seed: int, index: int, look: Look) -> list[_Writer]:
    """The five annotators, each having written its caption of the scene."""
    facts = _facts(scene, look)
    rng = caption_rng(seed, index)
    writers = []
    for name in ANNOTATORS:
        write, name_steep, steep = _WRITERS[name]
        writer = _Writer(rng, name_steep, steep)
        write(writer, facts)
        writer.finish(rng.choice(("", "", ".", " .")))
        writers.append(writer)
    return writers


def annotate(scene: SceneLike, seed: int, index: int, look: Look | None = None) -> tuple[str, ...]:
    """The five captions of item `index` of the dataset drawn with `seed`, one per annotator
    (`ANNOTATORS`), deterministic per (seed, index)."""
    return tuple(w.caption for w in _written(scene, seed, index, look or Look()))


def voice_tokens(
    scene: SceneLike, seed: int, index: int, look: Look | None = None
) -> tuple[int, int]:
    """(tokens from the annotators' voice slots, all tokens) over the five captions of an item:
    the tokens the scene cannot predict, and the total."""
    counts = [w.tokens() for w in _written(scene, seed, index, look or Look())]
    return sum(v for v, _ in counts), sum(t for _, t in counts)


# ---------------------------------------------------------------------- reading them back

_PARSE_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")
_COUNT_WORDS = {
    **{w: 1 for w in ("a", "an", "one", "the", "single", "lone", "solitary", "another")},
    **{"two": 2, "three": 3, "four": 4, "five": 5},
}
_GROUP_WORDS = {"pair": 2, "couple": 2, "trio": 3}


def _parse_words(text: str) -> list[str]:
    """Normalised words as the subject parser reads them: NFKC, lower case, hyphenated and
    apostrophised words kept whole."""
    return _PARSE_WORD.findall(unicodedata.normalize("NFKC", text).lower())


def _all_nouns() -> dict[str, tuple[str, ...]]:
    """Kind -> every noun phrase (singular and plural) that can name it."""
    entries = {kind: _options(entry.nouns) for kind, entry in KINDS.items()}
    entries["bird"] = _options(BIRD_NOUNS)
    entries["sun"] = _options(SUN)
    entries["moon"] = _options(MOON["crescent"]) + _options(MOON["full"])
    return {kind: (*nouns, *map(plural, nouns)) for kind, nouns in entries.items()}


@functools.lru_cache(maxsize=1)
def _parser_lexicon() -> tuple[dict[str, str], frozenset[tuple[str, str]], frozenset[str]]:
    """Head word -> kind; the (word, head) pairs of compound nouns whose first word is a head
    itself ("oak tree", "crescent moon"); the words that may stand between a count and its
    noun (adjectives and the first words of compound nouns)."""
    heads: dict[str, str] = {}
    compounds: set[tuple[str, str]] = set()
    modifiers: set[str] = {"small", "large", "tall", "crescent", "full", "other", "second"}
    for kind, nouns in _all_nouns().items():
        for noun in nouns:
            *before, head = _parse_words(noun)
            heads[head] = kind
            modifiers.update(before)
            if before:
                compounds.add((before[-1], head))
    own_sizes = [entry for sizes in KIND_SIZES.values() for entry in sizes.values()]
    for entry in (*SIZES.values(), *own_sizes, BIRD_LOOKS, *(k.looks for k in KINDS.values())):
        for option in _options(entry):
            modifiers.update(_parse_words(option))
    compounds = {(first, head) for first, head in compounds if first in heads}
    stops = {*heads, *_COUNT_WORDS, "of"}
    return heads, frozenset(compounds), frozenset(modifiers - stops)


def subjects_named(caption: str) -> dict[str, int]:
    """Kind -> number named in a caption of either language: the 34-token grammar's (where it
    agrees with `synthetic.subjects_in_caption`) or the annotators' synonyms and paraphrases.

    Every noun that names a kind counts with the number before it, adjectives skipped ("a pair
    of gulls" 2, "a flock of three rooks" 3, "an oak tree" 1), once where there is none."""
    heads, compounds, modifiers = _parser_lexicon()
    found = _parse_words(caption)
    counts: Counter[str] = Counter()
    for i, word in enumerate(found):
        kind = heads.get(word)
        if kind is None or (i + 1 < len(found) and (word, found[i + 1]) in compounds):
            continue
        j = i - 1
        while j >= 0 and (found[j] in modifiers or (found[j], found[j + 1]) in compounds):
            j -= 1
        number = 1
        if j >= 0 and found[j] in _COUNT_WORDS:
            number = _COUNT_WORDS[found[j]]
        elif j >= 1 and found[j] == "of":
            number = _GROUP_WORDS.get(found[j - 1], 1)
        counts[kind] += number
    return dict(counts)


# ------------------------------------------------------------------------------ statistics

_LETTERS = re.compile(r"[a-z]+")


def words(text: str) -> list[str]:
    """The issue's word rule: the lower-cased runs of letters `[a-z]+`."""
    return _LETTERS.findall(text.lower())


def word_counts(captions: Iterable[str]) -> Counter[str]:
    """How often each word occurs in `captions`."""
    counts: Counter[str] = Counter()
    for caption in captions:
        counts.update(words(caption))
    return counts


def hapax_share(counts: Counter[str]) -> float:
    """The share of word types seen exactly once."""
    return sum(1 for n in counts.values() if n == 1) / len(counts) if counts else 0.0


def mean_length(captions: Sequence[str]) -> float:
    """Mean words per caption."""
    return sum(len(words(c)) for c in captions) / len(captions) if captions else 0.0


def oov_share(train: Counter[str], val_captions: Iterable[str], min_freq: int) -> float:
    """The share of validation words outside the vocabulary of training words seen at least
    `min_freq` times."""
    val = [word for caption in val_captions for word in words(caption)]
    missing = sum(1 for word in val if train[word] < min_freq)
    return missing / len(val) if val else 0.0


def zipf_slope(counts: Counter[str], first: int = 10, last: int = 1000) -> float:
    """The slope of log frequency against log rank over ranks `first`..`last` (1-based,
    least squares, base 10); NaN with fewer than two ranks there."""
    frequencies = sorted(counts.values(), reverse=True)[first - 1 : last]
    if len(frequencies) < 2:
        return math.nan
    ranks = np.arange(first, first + len(frequencies), dtype=float)
    slope, _ = np.polyfit(np.log10(ranks), np.log10(np.asarray(frequencies, float)), 1)
    return float(slope)


@dataclass(frozen=True)
class CaptionStatistics:
    """The issue's table for one caption set: training captions measured, validation captions
    for out-of-vocabulary shares."""

    captions: int
    word_types: int
    hapax_share: float
    mean_length: float
    oov: dict[int, float]  # min_freq -> share of validation words out of vocabulary
    vocabulary: dict[int, int]  # min_freq -> vocabulary size
    zipf_slope: float


OOV_MIN_FREQS = (1, 2, 3, 5, 10)


def caption_statistics(train: Sequence[str], val: Sequence[str]) -> CaptionStatistics:
    """Word types, hapax share, mean length, validation out-of-vocabulary share and vocabulary
    at each of `OOV_MIN_FREQS`, and the Zipf slope (ranks 10-1,000) of `train`."""
    counts = word_counts(train)
    return CaptionStatistics(
        captions=len(train),
        word_types=len(counts),
        hapax_share=hapax_share(counts),
        mean_length=mean_length(train),
        oov={k: oov_share(counts, val, k) for k in OOV_MIN_FREQS},
        vocabulary={k: sum(1 for n in counts.values() if n >= k) for k in OOV_MIN_FREQS},
        zipf_slope=zipf_slope(counts),
    )
