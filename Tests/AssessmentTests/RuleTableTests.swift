import Testing
@testable import Assessment

/// Hand-written deployments covering every rule of the built-in packs: for each, the pack, the
/// expected verdict of that pack (when the record decides it), the rules that must fire, must not
/// fire, or must need information, and the article that justifies the expectation.
struct RuleCase: Sendable, CustomTestStringConvertible {
    let name: String
    let pack: String
    let record: String
    /// The settled verdict of the pack, and its worst case (when the case says).
    var verdict: Verdict? = nil
    var worstCase: Verdict? = nil
    var fires: [String] = []
    var notFires: [String] = []
    var needs: [String] = []
    /// Fields that must be among the pack's first three questions.
    var asksFirst: [String] = []
    let because: String
    var testDescription: String { "\(pack): \(name)" }
}

/// Facts that settle every prohibition of the AI Act pack as "no" for a facial recognition
/// system, so that cases can isolate one rule.
let settledFR = #""training_data_source":"licensed","reference_database_sources":["custody_photos"],"functions":[],"inferred_attributes":["identity"]"#

let ruleCases: [RuleCase] = [
    // MARK: EU AI Act, Art. 5 prohibitions
    RuleCase(name: "social scoring with detrimental treatment", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"social_scoring"},"decisions":{"scoring_over_time":true,"detrimental_treatment":true,"detriment_disproportionate":true}}"#,
             verdict: .prohibited, fires: ["ai-act-5-1-c"], because: "Art. 5(1)(c): evaluation over time + detrimental treatment, any actor"),
    RuleCase(name: "scoring over time by a private actor, detrimental treatment", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"private"},"system":{"type":"other"},"decisions":{"scoring_over_time":true,"detrimental_treatment":true,"detriment_unrelated_context":true}}"#,
             fires: ["ai-act-5-1-c"], because: "Art. 5(1)(c) applies to any actor, public or private"),
    RuleCase(name: "scoring without detrimental treatment is not 5(1)(c)", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"social_scoring"},"decisions":{"scoring_over_time":true,"detrimental_treatment":false}}"#,
             notFires: ["ai-act-5-1-c"], because: "Art. 5(1)(c)(i)-(ii) require detrimental or disproportionate treatment"),
    RuleCase(name: "social scoring with unknown consequences needs information", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"social_scoring"}}"#,
             verdict: .minimal, worstCase: .prohibited, needs: ["ai-act-5-1-c"], asksFirst: ["decisions.detriment_disproportionate", "decisions.detriment_unrelated_context"],
             because: "Art. 5(1)(c): the treatment decides; absent means unknown"),
    RuleCase(name: "social scoring whose treatment is detrimental in an unrelated context", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"social_scoring"},"decisions":{"detrimental_treatment":true,"detriment_unrelated_context":true}}"#,
             verdict: .prohibited, fires: ["ai-act-5-1-c"], because: "Art. 5(1)(c)(i): either limb suffices"),
    RuleCase(name: "detrimental treatment in neither limb is not 5(1)(c)", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"social_scoring"},"decisions":{"detrimental_treatment":true,"detriment_unrelated_context":false,"detriment_disproportionate":false}}"#,
             verdict: .minimal, notFires: ["ai-act-5-1-c"], because: "Art. 5(1)(c): detriment outside (i) and (ii) is not the prohibition"),
    RuleCase(name: "individual crime prediction from profiling alone", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"individual_crime_prediction"},"decisions":{"based_solely_on_profiling":true,"supports_human_assessment":false}}"#,
             verdict: .prohibited, fires: ["ai-act-5-1-d", "ai-act-annex-iii-6-d"], because: "Art. 5(1)(d)"),
    RuleCase(name: "crime prediction supporting a human assessment on objective facts", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"individual_crime_prediction"},"decisions":{"based_solely_on_profiling":false,"supports_human_assessment":true}}"#,
             notFires: ["ai-act-5-1-d"], because: "Art. 5(1)(d), second sentence: the exception for supporting human assessment"),
    RuleCase(name: "place-based prediction is not 5(1)(d)", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"place_based_predictive_policing"},"decisions":{"based_solely_on_profiling":true}}"#,
             notFires: ["ai-act-5-1-d", "ai-act-annex-iii-6-d"], because: "Art. 5(1)(d) and Annex III 6(d) concern natural persons, not places"),
    RuleCase(name: "face database from untargeted scraping of CCTV footage", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"facial_recognition","identification_mode":"one_to_many","timing":"post","reference_database_sources":["scraped_from_cctv"]}}"#,
             verdict: .prohibited, fires: ["ai-act-5-1-e", "ai-act-annex-iii-1-a"], because: "Art. 5(1)(e)"),
    RuleCase(name: "licensed face database is not 5(1)(e)", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"facial_recognition","training_data_source":"licensed"}}"#,
             notFires: ["ai-act-5-1-e"], because: "Art. 5(1)(e) targets untargeted scraping only"),
    RuleCase(name: "emotion recognition of employees", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"emotion_recognition"},"context":{"settings":["workplace"],"medical_or_safety_reason":false},"safeguards":{"notice":true}}"#,
             verdict: .prohibited, fires: ["ai-act-5-1-f", "ai-act-annex-iii-1-c"], because: "Art. 5(1)(f)"),
    RuleCase(name: "emotion recognition for driver safety is not 5(1)(f)", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"emotion_recognition"},"context":{"settings":["workplace"],"medical_or_safety_reason":true},"safeguards":{"notice":true}}"#,
             verdict: .highRisk, fires: ["ai-act-annex-iii-1-c"], notFires: ["ai-act-5-1-f"], because: "Art. 5(1)(f): medical or safety exception; still Annex III 1(c)"),
    RuleCase(name: "video analytics inferring pupils' emotions", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"video_analytics","inferred_attributes":["emotion"]},"context":{"settings":["education"],"medical_or_safety_reason":false}}"#,
             verdict: .prohibited, fires: ["ai-act-5-1-f"], because: "Art. 5(1)(f): education institutions; any system that infers emotions"),
    RuleCase(name: "emotion recognition in a shop is not 5(1)(f) but people must be told", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"private"},"system":{"type":"emotion_recognition"},"context":{"settings":["publicly_accessible"]},"safeguards":{"notice":false}}"#,
             verdict: .highRisk, fires: ["ai-act-annex-iii-1-c", "ai-act-50-3"], notFires: ["ai-act-5-1-f"], because: "Art. 5(1)(f) covers workplace and education only; Art. 50(3)"),
    RuleCase(name: "emotion recognition whose setting is unknown", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"emotion_recognition"}}"#,
             verdict: .highRisk, worstCase: .prohibited, fires: ["ai-act-annex-iii-1-c"], needs: ["ai-act-5-1-f"], asksFirst: ["context.settings"],
             because: "Art. 5(1)(f): the setting decides; Annex III 1(c) is settled meanwhile"),
    RuleCase(name: "biometric categorisation inferring religion", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"private"},"system":{"type":"biometric_categorisation","inferred_attributes":["religious_or_philosophical_beliefs"]},"context":{"labelling_lawfully_acquired_dataset":false},"safeguards":{"notice":true}}"#,
             verdict: .prohibited, fires: ["ai-act-5-1-g", "ai-act-annex-iii-1-b"], because: "Art. 5(1)(g)"),
    RuleCase(name: "biometric categorisation inferring sexual orientation", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"public_authority"},"system":{"type":"facial_recognition","inferred_attributes":["sexual_orientation"]},"context":{"labelling_lawfully_acquired_dataset":false}}"#,
             fires: ["ai-act-5-1-g"], because: "Art. 5(1)(g): sex life or sexual orientation"),
    RuleCase(name: "labelling a lawfully acquired dataset in law enforcement is excepted", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"biometric_categorisation","inferred_attributes":["race"]},"context":{"labelling_lawfully_acquired_dataset":true}}"#,
             fires: ["ai-act-annex-iii-1-b"], notFires: ["ai-act-5-1-g"], because: "Art. 5(1)(g), last sentence, and Recital 30; still Annex III 1(b)"),
    RuleCase(name: "labelling a lawfully acquired dataset is excepted", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"private"},"system":{"type":"biometric_categorisation","inferred_attributes":["race"]},"context":{"labelling_lawfully_acquired_dataset":true}}"#,
             notFires: ["ai-act-5-1-g"], because: "Art. 5(1)(g): labelling or filtering of lawfully acquired datasets"),
    RuleCase(name: "age estimation is not 5(1)(g) but Annex III 1(b)", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"private"},"system":{"type":"biometric_categorisation","inferred_attributes":["age","sex"]},"safeguards":{"notice":true}}"#,
             verdict: .highRisk, fires: ["ai-act-annex-iii-1-b"], notFires: ["ai-act-5-1-g"], because: "Art. 5(1)(g) lists race, opinions, union, beliefs, sex life, orientation; Annex III 1(b) protected attributes"),
    RuleCase(name: "live face recognition by police in a square", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement","country":"DE"},"system":{"type":"facial_recognition","identification_mode":"one_to_many","timing":"real_time",\#(settledFR)},"context":{"settings":["publicly_accessible"],"law_enforcement_objective":"general"}}"#,
             verdict: .prohibited, fires: ["ai-act-5-1-h", "ai-act-annex-iii-1-a"], because: "Art. 5(1)(h): general policing is none of the three objectives"),
    RuleCase(name: "missing-child search with every condition of Art. 5(2)-(7)", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement","country":"FR"},"system":{"type":"facial_recognition","identification_mode":"one_to_many","timing":"real_time",\#(settledFR)},"context":{"settings":["publicly_accessible"],"law_enforcement_objective":"victim_search"},"safeguards":{"targeted_individual":true,"prior_authorisation":true,"fria_done":true,"fria_elements":["processes","period_and_frequency","affected_categories","risks_of_harm","human_oversight","mitigation_and_complaints"],"eu_database_registered":true,"national_law_authorises":true}}"#,
             verdict: .highRisk, fires: ["ai-act-annex-iii-1-a"], notFires: ["ai-act-5-1-h"], because: "Art. 5(1)(h)(i) with Art. 5(2), (3), (5): not prohibited; Annex III 1(a)"),
    RuleCase(name: "imminent threat without prior authorisation", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"facial_recognition","identification_mode":"one_to_many","timing":"real_time",\#(settledFR)},"context":{"settings":["publicly_accessible"],"law_enforcement_objective":"imminent_threat"},"safeguards":{"targeted_individual":true,"prior_authorisation":false,"fria_done":true,"eu_database_registered":true,"national_law_authorises":true}}"#,
             verdict: .prohibited, fires: ["ai-act-5-1-h"], because: "Art. 5(3): prior authorisation is a condition"),
    RuleCase(name: "suspect search whose safeguards are undocumented", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"remote_biometric_identification","timing":"real_time",\#(settledFR)},"context":{"settings":["publicly_accessible"],"law_enforcement_objective":"serious_crime_suspect"}}"#,
             verdict: .highRisk, worstCase: .prohibited, fires: ["ai-act-annex-iii-1-a"], needs: ["ai-act-5-1-h"],
             because: "Art. 5(2)-(5): the conditions decide; unknown, not false; Annex III 1(a) is settled"),
    RuleCase(name: "police face search of driving-licence photos, timing and place unknown", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement","country":"US"},"system":{"type":"facial_recognition","identification_mode":"one_to_many","reference_database_sources":["driving_licences"]},"data":{"categories":["biometric"]}}"#,
             verdict: .highRisk, worstCase: .prohibited, fires: ["ai-act-annex-iii-1-a"], notFires: ["ai-act-5-1-e"], needs: ["ai-act-5-1-h"],
             asksFirst: ["system.timing", "context.settings"],
             because: "Annex III 1(a) is settled by the known facts; Art. 5(1)(h) turns on timing and place, which come first"),
    RuleCase(name: "face search of an unknown reference database", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"facial_recognition"}}"#,
             worstCase: .prohibited, needs: ["ai-act-5-1-e"], asksFirst: ["system.reference_database_sources"],
             because: "Art. 5(1)(e): where the reference database comes from decides; a face system is not presumed scraped"),
    RuleCase(name: "using a vendor's database scraped from the internet", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"facial_recognition","reference_database_sources":["scraped_from_internet"]}}"#,
             verdict: .prohibited, fires: ["ai-act-5-1-e"], because: "Art. 5(1)(e) covers the use of such a system"),
    RuleCase(name: "a face model trained on scraped images, reference database of custody photos", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"facial_recognition","training_data_source":"untargeted_scraping","reference_database_sources":["custody_photos"]}}"#,
             notFires: ["ai-act-5-1-e"], because: "Art. 5(1)(e) is about databases built by scraping, not training data"),
    RuleCase(name: "a drone matching faces one-to-many is remote biometric identification", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"drone","functions":["facial_recognition"],"identification_mode":"one_to_many"}}"#,
             verdict: .highRisk, fires: ["ai-act-annex-iii-1-a"], because: "Art. 3(41): RBI by function, whatever the carrier"),
    RuleCase(name: "a camera network matching faces one-to-many is remote biometric identification", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"video_analytics","functions":["facial_recognition"],"identification_mode":"one_to_many"}}"#,
             fires: ["ai-act-annex-iii-1-a"], because: "Art. 3(41)"),
    RuleCase(name: "a phone network matching voices one-to-many is remote biometric identification", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"other","functions":["voice_analysis"],"identification_mode":"one_to_many"}}"#,
             fires: ["ai-act-annex-iii-1-a"], because: "Art. 3(41): any biometric, compared against a reference database"),
    RuleCase(name: "a drone carrying only a camera", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"drone","functions":[],"identification_mode":"none"}}"#,
             notFires: ["ai-act-annex-iii-1-a"], because: "no biometric identification function"),
    RuleCase(name: "a drone whose functions are unknown could be RBI", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"drone","identification_mode":"one_to_many","timing":"real_time"},"context":{"settings":["publicly_accessible"]}}"#,
             worstCase: .prohibited, needs: ["ai-act-annex-iii-1-a", "ai-act-5-1-h"], asksFirst: ["system.functions"],
             because: "Art. 3(41): whether it identifies people biometrically is what decides"),
    RuleCase(name: "a licence-plate reader is not biometric identification", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"alpr","identification_mode":"one_to_many","timing":"real_time"},"context":{"settings":["publicly_accessible"]}}"#,
             notFires: ["ai-act-annex-iii-1-a", "ai-act-5-1-h"], because: "Art. 3(41) needs biometric data; a plate is not"),
    RuleCase(name: "face verification at a gate is not remote biometric identification", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"facial_recognition","identification_mode":"one_to_one_verification","timing":"real_time",\#(settledFR)},"context":{"settings":["publicly_accessible"]}}"#,
             notFires: ["ai-act-annex-iii-1-a", "ai-act-5-1-h"], because: "Annex III 1(a) excludes verification; Art. 3(41) needs a comparison with a reference database"),
    RuleCase(name: "crime prediction whose basis is unknown", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"individual_crime_prediction"}}"#,
             verdict: .highRisk, worstCase: .prohibited, fires: ["ai-act-annex-iii-6-d"], needs: ["ai-act-5-1-d"], asksFirst: ["decisions.based_solely_on_profiling"],
             because: "Art. 5(1)(d): profiling alone decides; Annex III 6(d) is settled"),
    RuleCase(name: "biometric categorisation whose inferences are unknown", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"biometric_categorisation"}}"#,
             worstCase: .prohibited, needs: ["ai-act-5-1-g"], asksFirst: ["system.inferred_attributes"],
             because: "Art. 5(1)(g): which characteristics it infers decides"),
    RuleCase(name: "police categorising people by race", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"video_analytics","inferred_attributes":["race"]},"context":{"labelling_lawfully_acquired_dataset":false}}"#,
             verdict: .prohibited, fires: ["ai-act-5-1-g"], because: "Art. 5(1)(g): the exception is the labelling of lawfully acquired datasets (Recital 30), not law enforcement as such"),
    RuleCase(name: "post identification by police without authorisation", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"facial_recognition","identification_mode":"one_to_many","timing":"post",\#(settledFR)},"context":{"settings":["publicly_accessible"]},"safeguards":{"prior_authorisation":false}}"#,
             verdict: .highRisk, fires: ["ai-act-annex-iii-1-a", "ai-act-26-10"], notFires: ["ai-act-5-1-h"], because: "Art. 5(1)(h) covers real-time only; Art. 26(10) for post use"),
    RuleCase(name: "real-time identification by a shop is not 5(1)(h)", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"private"},"system":{"type":"facial_recognition","identification_mode":"one_to_many","timing":"real_time",\#(settledFR)},"context":{"settings":["publicly_accessible"]}}"#,
             fires: ["ai-act-annex-iii-1-a"], notFires: ["ai-act-5-1-h"], because: "Art. 5(1)(h) concerns use for law enforcement"),
    RuleCase(name: "one-to-one verification is not remote biometric identification", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"facial_recognition","identification_mode":"one_to_one_verification","timing":"real_time",\#(settledFR)},"context":{"settings":["publicly_accessible","workplace"],"medical_or_safety_reason":false}}"#,
             verdict: .minimal, notFires: ["ai-act-5-1-h", "ai-act-annex-iii-1-a"], because: "Art. 3(36) and Annex III 1(a): verification is excluded"),
    RuleCase(name: "identification on private premises is not in a publicly accessible space", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"facial_recognition","identification_mode":"one_to_many","timing":"real_time",\#(settledFR)},"context":{"settings":["private"]}}"#,
             notFires: ["ai-act-5-1-h"], because: "Art. 3(44): publicly accessible space"),
    // MARK: EU AI Act, Annex III high-risk areas and obligations
    RuleCase(name: "gait recognition one-to-many", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"gait_recognition","identification_mode":"one_to_many","timing":"post",\#(settledFR)}}"#,
             fires: ["ai-act-annex-iii-1-a"], because: "Annex III 1(a)"),
    RuleCase(name: "emotion recognition is high-risk", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"voice_analysis","inferred_attributes":["emotion"]}}"#,
             fires: ["ai-act-annex-iii-1-c"], because: "Annex III 1(c)"),
    RuleCase(name: "exam proctoring", pack: "eu-ai-act-2024",
             record: #"{"system":{"type":"video_analytics"},"context":{"use_cases":["exam_proctoring"]}}"#,
             fires: ["ai-act-annex-iii-3-d"], because: "Annex III 3(d)"),
    RuleCase(name: "monitoring warehouse workers' performance", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"private"},"system":{"type":"video_analytics"},"context":{"use_cases":["worker_management"]}}"#,
             fires: ["ai-act-annex-iii-4-b"], because: "Annex III 4(b)"),
    RuleCase(name: "welfare eligibility by a public authority, no FRIA", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"public_authority"},"system":{"type":"other"},"context":{"use_cases":["public_benefits_eligibility"]},"safeguards":{"fria_done":false}}"#,
             fires: ["ai-act-annex-iii-5-a", "ai-act-27"], because: "Annex III 5(a); Art. 27(1): bodies governed by public law"),
    RuleCase(name: "eligibility scoring by a private firm for itself is not 5(a)", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"private"},"system":{"type":"other"},"context":{"use_cases":["public_benefits_eligibility"]}}"#,
             notFires: ["ai-act-annex-iii-5-a"], because: "Annex III 5(a): by or on behalf of public authorities"),
    RuleCase(name: "credit scoring by a bank without FRIA", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"private"},"system":{"type":"other"},"context":{"use_cases":["creditworthiness"]},"safeguards":{"fria_done":false}}"#,
             fires: ["ai-act-annex-iii-5-b", "ai-act-27"], because: "Annex III 5(b); Art. 27(1): deployers of 5(b) systems"),
    RuleCase(name: "health insurance pricing", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"private"},"system":{"type":"other"},"context":{"use_cases":["insurance_pricing"]}}"#,
             fires: ["ai-act-annex-iii-5-c"], because: "Annex III 5(c)"),
    RuleCase(name: "police assessing who may become a victim", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"other"},"context":{"use_cases":["victim_risk_assessment"]}}"#,
             fires: ["ai-act-annex-iii-6-a"], because: "Annex III 6(a)"),
    RuleCase(name: "victim risk scoring by an NGO is not 6(a)", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"private"},"system":{"type":"other"},"context":{"use_cases":["victim_risk_assessment"]}}"#,
             notFires: ["ai-act-annex-iii-6-a"], because: "Annex III 6: by or on behalf of law-enforcement authorities"),
    RuleCase(name: "AI polygraph in interrogations", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"voice_analysis"},"context":{"use_cases":["polygraph"]}}"#,
             fires: ["ai-act-annex-iii-6-b"], because: "Annex III 6(b)"),
    RuleCase(name: "evidence reliability scoring", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"private_for_public_authority"},"system":{"type":"other"},"context":{"use_cases":["evidence_reliability"],"purposes":["law_enforcement"]}}"#,
             fires: ["ai-act-annex-iii-6-c"], because: "Annex III 6(c): on behalf of law enforcement"),
    RuleCase(name: "evidence reliability scoring by a contractor whose purpose is unstated", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"private_for_public_authority"},"system":{"type":"other"},"context":{"use_cases":["evidence_reliability"]}}"#,
             needs: ["ai-act-annex-iii-6-c"], because: "Annex III 6: whether it serves law enforcement decides"),
    RuleCase(name: "re-offending risk assessment", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"other"},"context":{"use_cases":["offending_risk_assessment"]}}"#,
             fires: ["ai-act-annex-iii-6-d"], because: "Annex III 6(d)"),
    RuleCase(name: "profiling suspects in investigations, with profiling declared", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"other"},"context":{"use_cases":["criminal_profiling"]},"decisions":{"profiling":true}}"#,
             fires: ["ai-act-annex-iii-6-e", "ai-act-6-3-profiling"], because: "Annex III 6(e); Art. 6(3) last subparagraph"),
    RuleCase(name: "lie detector at the border", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"public_authority"},"system":{"type":"emotion_recognition"},"context":{"use_cases":["polygraph"],"settings":["border"]}}"#,
             fires: ["ai-act-annex-iii-7-a", "ai-act-annex-iii-1-c"], because: "Annex III 7(a)"),
    RuleCase(name: "risk scoring of travellers", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"public_authority"},"system":{"type":"other"},"context":{"use_cases":["migration_risk_assessment"]}}"#,
             fires: ["ai-act-annex-iii-7-b"], because: "Annex III 7(b)"),
    RuleCase(name: "visa application triage", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"public_authority"},"system":{"type":"other"},"context":{"use_cases":["asylum_visa_examination"]}}"#,
             fires: ["ai-act-annex-iii-7-c"], because: "Annex III 7(c)"),
    RuleCase(name: "identifying people crossing the border", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"public_authority"},"system":{"type":"facial_recognition","identification_mode":"one_to_many","timing":"real_time",\#(settledFR)},"context":{"settings":["border"]}}"#,
             fires: ["ai-act-annex-iii-7-d", "ai-act-annex-iii-1-a"], because: "Annex III 7(d)"),
    RuleCase(name: "checking travellers against their passport is excepted from 7(d)", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"public_authority"},"system":{"type":"facial_recognition","identification_mode":"one_to_one_verification","timing":"real_time",\#(settledFR)},"context":{"settings":["border"],"use_cases":["asylum_visa_examination"]}}"#,
             notFires: ["ai-act-annex-iii-7-d", "ai-act-annex-iii-1-a"], because: "Annex III 7(d): except verification of travel documents"),
    RuleCase(name: "an incomplete FRIA", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"public_authority"},"system":{"type":"other"},"context":{"use_cases":["public_benefits_eligibility"]},"safeguards":{"fria_done":true,"fria_elements":["processes","risks_of_harm"]}}"#,
             fires: ["ai-act-27-elements"], notFires: ["ai-act-27"], because: "Art. 27(1)(a)-(f)"),
    RuleCase(name: "biometric categorisation without notice", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"biometric_categorisation","inferred_attributes":["sex"]},"safeguards":{"notice":false}}"#,
             fires: ["ai-act-50-3"], because: "Art. 50(3)"),
    RuleCase(name: "a licence-plate reader is none of these practices", pack: "eu-ai-act-2024",
             record: #"{"operator":{"kind":"law_enforcement","country":"US"},"system":{"type":"alpr"},"context":{"use_cases":[]}}"#,
             verdict: .minimal, because: "Art. 5 and Annex III 1 concern biometrics, emotions and social scoring; no Annex III use"),
    // MARK: GDPR and LED
    RuleCase(name: "all nine WP248 criteria", pack: "gdpr-dpia",
             record: #"{"operator":{"kind":"private"},"system":{"type":"facial_recognition","identification_mode":"one_to_many"},"context":{"settings":["publicly_accessible"],"people_affected_per_day":50000,"vulnerable_groups":["children"]},"data":{"categories":["biometric"],"combined_with_other_datasets":true},"decisions":{"profiling":true,"automated_legal_effect":true,"prevents_exercise_of_rights":true},"safeguards":{"dpia_done":true,"art9_condition":"substantial_public_interest"}}"#,
             verdict: .minimal, fires: ["wp248-1", "wp248-2", "wp248-3", "wp248-4", "wp248-5", "wp248-6", "wp248-7", "wp248-8", "wp248-9"],
             notFires: ["gdpr-35-1", "gdpr-9"], because: "WP248 rev.01 III.B.a; a DPIA was done; Art. 9(2)(g)"),
    RuleCase(name: "two criteria and no DPIA", pack: "gdpr-dpia",
             record: #"{"operator":{"kind":"private"},"system":{"type":"alpr"},"context":{"settings":["publicly_accessible"]},"data":{"categories":["location"]},"safeguards":{"dpia_done":false}}"#,
             verdict: .elevated, fires: ["wp248-3", "wp248-4", "gdpr-35-1"], because: "Art. 35(1); WP248: two criteria → DPIA"),
    RuleCase(name: "one criterion only: no DPIA required", pack: "gdpr-dpia",
             record: #"{"operator":{"kind":"private"},"system":{"type":"gunshot_detection","identification_mode":"none"},"context":{"settings":["private"],"people_affected_per_day":100,"vulnerable_groups":[]},"data":{"categories":["location"],"combined_with_other_datasets":false},"decisions":{"profiling":false,"scoring_over_time":false,"automated_legal_effect":false,"prevents_exercise_of_rights":false},"safeguards":{"dpia_done":false}}"#,
             verdict: .minimal, fires: ["wp248-4"], notFires: ["gdpr-35-1"], because: "WP248: one criterion is not enough"),
    RuleCase(name: "systematic, extensive automated evaluation with legal effect", pack: "gdpr-dpia",
             record: #"{"operator":{"kind":"public_authority"},"system":{"type":"other"},"decisions":{"profiling":true,"automated_legal_effect":true},"safeguards":{"dpia_done":false}}"#,
             fires: ["gdpr-35-3-a", "gdpr-35-1"], because: "Art. 35(3)(a)"),
    RuleCase(name: "health data of a whole city", pack: "gdpr-dpia",
             record: #"{"operator":{"kind":"public_authority"},"system":{"type":"other"},"context":{"people_affected_per_day":20000},"data":{"categories":["health"]},"safeguards":{"dpia_done":false}}"#,
             fires: ["gdpr-35-3-b"], because: "Art. 35(3)(b)"),
    RuleCase(name: "CCTV analytics over a busy square", pack: "gdpr-dpia",
             record: #"{"operator":{"kind":"public_authority"},"system":{"type":"video_analytics"},"context":{"settings":["publicly_accessible"],"people_affected_per_day":80000},"safeguards":{"dpia_done":false}}"#,
             fires: ["gdpr-35-3-c"], because: "Art. 35(3)(c)"),
    RuleCase(name: "a DPIA was done: no DPIA finding", pack: "gdpr-dpia",
             record: #"{"operator":{"kind":"public_authority"},"system":{"type":"video_analytics"},"context":{"settings":["publicly_accessible"],"people_affected_per_day":80000},"safeguards":{"dpia_done":true}}"#,
             notFires: ["gdpr-35-3-c", "gdpr-35-1"], because: "Art. 35(1): the obligation is met"),
    RuleCase(name: "face access control without an Art. 9(2) condition", pack: "gdpr-dpia",
             record: #"{"operator":{"kind":"private"},"system":{"type":"facial_recognition","identification_mode":"one_to_one_verification"},"data":{"categories":["biometric"]},"safeguards":{"art9_condition":"none"}}"#,
             verdict: .prohibited, fires: ["gdpr-9"], because: "Art. 9(1): biometric data for unique identification"),
    RuleCase(name: "face access control with explicit consent", pack: "gdpr-dpia",
             record: #"{"operator":{"kind":"private"},"system":{"type":"facial_recognition","identification_mode":"one_to_one_verification"},"data":{"categories":["biometric"]},"safeguards":{"art9_condition":"explicit_consent"}}"#,
             notFires: ["gdpr-9"], because: "Art. 9(2)(a)"),
    RuleCase(name: "face identification whose Art. 9(2) basis is unknown", pack: "gdpr-dpia",
             record: #"{"operator":{"kind":"public_authority"},"system":{"type":"facial_recognition","identification_mode":"one_to_many"},"data":{"categories":["biometric"]}}"#,
             worstCase: .prohibited, needs: ["gdpr-9"], asksFirst: ["safeguards.art9_condition"], because: "Art. 9(2): the condition decides"),
    RuleCase(name: "police face identification whose strict necessity is unstated", pack: "gdpr-dpia",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"facial_recognition","identification_mode":"one_to_many"},"data":{"categories":["biometric"]}}"#,
             worstCase: .prohibited, needs: ["led-10"], asksFirst: ["safeguards.strictly_necessary"], because: "LED Art. 10: strict necessity and a legal basis decide"),
    RuleCase(name: "data shared with a foreign authority", pack: "gdpr-dpia",
             record: #"{"data":{"shared_with":["foreign_authorities"]}}"#,
             fires: ["gdpr-44"], because: "GDPR Chapter V; LED Art. 35-39"),
    RuleCase(name: "police processing falls under the LED, not the GDPR", pack: "gdpr-dpia",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"alpr"},"context":{"settings":["publicly_accessible"]},"data":{"categories":["location"]},"safeguards":{"dpia_done":false}}"#,
             fires: ["led-27"], notFires: ["gdpr-35-1"], because: "LED Art. 27; GDPR Art. 2(2)(d)"),
    RuleCase(name: "police face identification without strict necessity", pack: "gdpr-dpia",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"facial_recognition","identification_mode":"one_to_many"},"data":{"categories":["biometric"]},"safeguards":{"strictly_necessary":false,"national_law_authorises":true}}"#,
             verdict: .prohibited, fires: ["led-10"], notFires: ["gdpr-9"], because: "LED Art. 10"),
    RuleCase(name: "police face identification, strictly necessary and authorised by law", pack: "gdpr-dpia",
             record: #"{"operator":{"kind":"law_enforcement"},"system":{"type":"facial_recognition","identification_mode":"one_to_many"},"data":{"categories":["biometric"]},"safeguards":{"strictly_necessary":true,"national_law_authorises":true}}"#,
             notFires: ["led-10"], because: "LED Art. 10(a)"),
    // MARK: Privacy baseline
    RuleCase(name: "plate reads kept a year", pack: "privacy-baseline",
             record: #"{"system":{"type":"alpr"},"data":{"retention_days":365}}"#,
             verdict: .elevated, fires: ["pb-retention-alpr"], because: "Storage limitation, GDPR Art. 5(1)(e)"),
    RuleCase(name: "plate reads kept 30 days", pack: "privacy-baseline",
             record: #"{"system":{"type":"alpr"},"data":{"retention_days":30}}"#,
             notFires: ["pb-retention-alpr"], because: "within the baseline's 30 days"),
    RuleCase(name: "body-camera footage kept six months", pack: "privacy-baseline",
             record: #"{"system":{"type":"body_worn_camera"},"data":{"categories":["images","audio"],"retention_days":180}}"#,
             fires: ["pb-retention-biometric"], because: "Storage limitation"),
    RuleCase(name: "error rates 1.5 times higher for one group", pack: "privacy-baseline",
             record: #"{"system":{"type":"facial_recognition"},"safeguards":{"demographic_disparity_ratio":1.5,"false_match_rate":0.001}}"#,
             fires: ["pb-demographic-disparity"], notFires: ["pb-accuracy-undocumented"], because: "Charter Art. 21"),
    RuleCase(name: "error rates within 1.1", pack: "privacy-baseline",
             record: #"{"system":{"type":"facial_recognition"},"safeguards":{"demographic_disparity_ratio":1.1}}"#,
             fires: ["pb-accuracy-undocumented"], notFires: ["pb-demographic-disparity"], because: "below the 1.25 threshold; no false-match rate documented"),
    RuleCase(name: "matches acted on without review", pack: "privacy-baseline",
             record: #"{"system":{"type":"facial_recognition"},"safeguards":{"human_review":false,"false_match_rate":0.01}}"#,
             fires: ["pb-no-human-review"], because: "AI Act Art. 14(5)"),
    RuleCase(name: "no notice and no redress", pack: "privacy-baseline",
             record: #"{"system":{"type":"drone"},"safeguards":{"notice":false,"redress":false}}"#,
             verdict: .limited, fires: ["pb-no-notice", "pb-no-redress"], because: "GDPR Art. 13-14; Charter Art. 47"),
    RuleCase(name: "reads shared with federal agencies", pack: "privacy-baseline",
             record: #"{"system":{"type":"alpr"},"data":{"shared_with":["federal_agencies"]}}"#,
             fires: ["pb-sharing"], because: "Purpose limitation"),
    RuleCase(name: "a quarter of a million people a day", pack: "privacy-baseline",
             record: #"{"context":{"people_affected_per_day":250000}}"#,
             fires: ["pb-scale-very-large"], notFires: ["pb-scale-large"], because: "Charter Art. 52(1)"),
    RuleCase(name: "twenty thousand people a day", pack: "privacy-baseline",
             record: #"{"context":{"people_affected_per_day":20000}}"#,
             fires: ["pb-scale-large"], notFires: ["pb-scale-very-large"], because: "GDPR Recital 91"),
    RuleCase(name: "combined with the driver-licence database", pack: "privacy-baseline",
             record: #"{"data":{"combined_with_other_datasets":true}}"#,
             fires: ["pb-combination"], because: "Purpose limitation"),
    RuleCase(name: "the vendor keeps a copy", pack: "privacy-baseline",
             record: #"{"data":{"vendor_access":true}}"#,
             fires: ["pb-vendor-access"], because: "GDPR Art. 28"),
    RuleCase(name: "nothing known: the baseline finds nothing", pack: "privacy-baseline",
             record: #"{}"#,
             verdict: .minimal, because: "absent facts are unknown; the baseline never blocks"),
]

@Suite struct RuleTableTests {
    @Test(arguments: ruleCases)
    func ruleCase(_ c: RuleCase) throws {
        let pack = try #require(CriteriaPack.builtIn(id: c.pack))
        let record = try JSONParser.parse(c.record)
        #expect(RecordSchema.deployment.validate(record).isEmpty, "the case's record must be valid: \(RecordSchema.deployment.validate(record))")
        let result = pack.assess(record, asOf: testDate)
        let fired = Set(result.findings.filter { $0.outcome == .fired }.map(\.ruleID))
        let needs = Set(result.findings.filter { $0.outcome == .needsInformation }.map(\.ruleID))
        if let verdict = c.verdict { #expect(result.verdict == verdict, "\(c.because); fired \(fired.sorted()), needs \(needs.sorted())") }
        for rule in c.fires { #expect(fired.contains(rule), "\(rule) should fire: \(c.because)") }
        for rule in c.notFires { #expect(!fired.contains(rule), "\(rule) should not fire: \(c.because)") }
        for rule in c.needs { #expect(needs.contains(rule), "\(rule) should need information: \(c.because)") }
        if let worst = c.worstCase { #expect(result.worstCase == worst, "worst case: \(c.because); needs \(needs.sorted())") }
        let first = result.questions.prefix(3).flatMap(\.fields)
        for field in c.asksFirst {
            #expect(first.contains(field), "\(field) should be among the first three questions (\(first)): \(c.because)")
        }
    }

    @Test func everyBuiltInRuleIsExercised() {
        let exercised = Set(ruleCases.flatMap { $0.fires + $0.notFires + $0.needs })
        for pack in CriteriaPack.builtIn {
            for rule in pack.rules {
                #expect(ruleCases.contains { $0.pack == pack.id && $0.fires.contains(rule.id) }, "no case makes \(rule.id) fire")
                #expect(exercised.contains(rule.id))
            }
        }
        #expect(ruleCases.count >= 60)
    }

    @Test func needsInformationNamesTheDecidingFields() throws {
        let pack = try #require(CriteriaPack.builtIn(id: "eu-ai-act-2024"))
        let result = pack.assess(try JSONParser.parse(#"{"operator":{"kind":"law_enforcement"},"system":{"type":"facial_recognition","identification_mode":"one_to_many","training_data_source":"licensed"},"context":{"settings":["publicly_accessible"]}}"#), asOf: testDate)
        let finding = try #require(result.findings.first { $0.ruleID == "ai-act-5-1-h" })
        #expect(finding.outcome == .needsInformation)
        #expect(finding.missing == ["context.law_enforcement_objective", "safeguards.eu_database_registered", "safeguards.fria_done",
                                    "safeguards.national_law_authorises", "safeguards.prior_authorisation", "safeguards.strictly_necessary",
                                    "safeguards.targeted_individual", "system.timing"])
    }

    @Test func firedFindingsNameTheirFacts() throws {
        let pack = try #require(CriteriaPack.builtIn(id: "eu-ai-act-2024"))
        let result = pack.assess(try JSONParser.parse(#"{"system":{"type":"emotion_recognition"},"context":{"settings":["workplace","online"],"medical_or_safety_reason":false},"operator":{"name":"irrelevant"}}"#), asOf: testDate)
        let finding = try #require(result.findings.first { $0.ruleID == "ai-act-5-1-f" })
        #expect(finding.facts == ["system.type": .string("emotion_recognition"),
                                  "context.settings": .array([.string("workplace"), .string("online")]),
                                  "context.medical_or_safety_reason": .bool(false)])
    }

    @Test func packsBindInTheUnionAndAreBenchmarksElsewhere() throws {
        let set = CriteriaSet.builtIn
        let us = set.assess(try JSONParser.parse(#"{"operator":{"country":"US"}}"#), asOf: testDate)
        #expect(us.packs.map(\.applies) == [.benchmark, .benchmark, .benchmark])
        let de = set.assess(try JSONParser.parse(#"{"operator":{"country":"DE"}}"#), asOf: testDate)
        #expect(de.packs.map(\.applies) == [.binding, .binding, .benchmark])
        let unknown = set.assess(try JSONParser.parse("{}"), asOf: testDate)
        #expect(unknown.packs.map(\.applies) == [.undetermined, .undetermined, .benchmark])
    }

    @Test func theOverallVerdictIsTheMostSevereAcrossPacks() throws {
        let set = CriteriaSet.builtIn
        // The AI Act finds high risk; the GDPR pack finds the Art. 9 prohibition.
        let result = set.assess(try JSONParser.parse(#"{"operator":{"kind":"private","country":"DE"},"system":{"type":"facial_recognition","identification_mode":"one_to_many","timing":"post","training_data_source":"licensed","inferred_attributes":["identity"]},"data":{"categories":["biometric"]},"safeguards":{"art9_condition":"none"}}"#), asOf: testDate)
        #expect(result.packs[0].verdict == .highRisk)
        #expect(result.packs[1].verdict == .prohibited)
        #expect(result.verdict == .prohibited)
        #expect(result.score == result.packs.map(\.score).max())
    }
}
