//! Amazon Comprehend Medical adapter of the clinical NLP port (feature `aws`): `InferICD10CM`
//! for diagnoses and `InferRxNorm` for medications, with their traits (`NEGATION`,
//! `PERTAINS_TO_FAMILY`, `HYPOTHETICAL`, `PAST_HISTORY`) deciding what is not the patient's
//! current fact. LOINC stays ours: the service has no lab linking.

use crate::clinical::nlp::{ClinicalNlp, NlpEntity, NlpError};
use async_trait::async_trait;
use aws_sdk_comprehendmedical::Client;
use aws_sdk_comprehendmedical::error::DisplayErrorContext;
use aws_sdk_comprehendmedical::types::{
    Icd10CmTraitName, RxNormAttributeType, RxNormEntityType, RxNormTraitName,
};

/// Traits below this score are not trusted to exclude a mention.
const TRAIT_MIN_SCORE: f32 = 0.5;

pub struct ComprehendMedical {
    client: Client,
}

impl ComprehendMedical {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub fn from_conf(conf: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(conf))
    }
}

fn error(op: &str, e: impl std::error::Error + 'static) -> NlpError {
    NlpError {
        service: "comprehend-medical",
        message: format!("{op}: {}", DisplayErrorContext(e)),
    }
}

fn span(begin: Option<i32>, end: Option<i32>) -> Option<std::ops::Range<usize>> {
    let (b, e) = (usize::try_from(begin?).ok()?, usize::try_from(end?).ok()?);
    (b < e).then_some(b..e)
}

#[async_trait]
impl ClinicalNlp for ComprehendMedical {
    fn name(&self) -> &'static str {
        "comprehend-medical"
    }

    async fn diagnoses(&self, text: &str) -> Result<Vec<NlpEntity>, NlpError> {
        let out = self
            .client
            .infer_icd10_cm()
            .text(text)
            .send()
            .await
            .map_err(|e| error("InferICD10CM", e))?;
        Ok(out
            .entities
            .iter()
            .filter_map(|e| {
                let span = span(e.begin_offset, e.end_offset)?;
                let excluded_by = e.traits.iter().flatten().find_map(|t| {
                    let name = t.name.as_ref()?;
                    let excludes = matches!(
                        name,
                        Icd10CmTraitName::Negation
                            | Icd10CmTraitName::PertainsToFamily
                            | Icd10CmTraitName::Hypothetical
                    );
                    (excludes && t.score.unwrap_or(0.0) >= TRAIT_MIN_SCORE)
                        .then(|| name.as_str().to_owned())
                });
                // The best-scored concept is the code.
                let concept = e
                    .icd10_cm_concepts
                    .iter()
                    .flatten()
                    .max_by(|a, b| a.score.unwrap_or(0.0).total_cmp(&b.score.unwrap_or(0.0)));
                Some(NlpEntity {
                    span,
                    code: concept.and_then(|c| c.code.clone()),
                    description: concept.and_then(|c| c.description.clone()),
                    score: e
                        .score
                        .unwrap_or(0.0)
                        .min(concept.and_then(|c| c.score).unwrap_or(0.0)),
                    excluded_by,
                    strength: None,
                    form: None,
                    sig: None,
                })
            })
            .collect())
    }

    async fn medications(&self, text: &str) -> Result<Vec<NlpEntity>, NlpError> {
        let out = self
            .client
            .infer_rx_norm()
            .text(text)
            .send()
            .await
            .map_err(|e| error("InferRxNorm", e))?;
        Ok(out
            .entities
            .iter()
            .filter(|e| {
                matches!(
                    e.r#type,
                    Some(RxNormEntityType::GenericName | RxNormEntityType::BrandName)
                )
            })
            .filter_map(|e| {
                let span = span(e.begin_offset, e.end_offset)?;
                let excluded_by = e.traits.iter().flatten().find_map(|t| {
                    let name = t.name.as_ref()?;
                    let excludes = matches!(
                        name,
                        RxNormTraitName::Negation | RxNormTraitName::PastHistory
                    );
                    (excludes && t.score.unwrap_or(0.0) >= TRAIT_MIN_SCORE)
                        .then(|| name.as_str().to_owned())
                });
                let attribute = |kind: RxNormAttributeType| {
                    e.attributes
                        .iter()
                        .flatten()
                        .find(|a| a.r#type.as_ref() == Some(&kind))
                        .and_then(|a| a.text.clone())
                };
                let sig: Vec<String> = [
                    RxNormAttributeType::Dosage,
                    RxNormAttributeType::RouteOrMode,
                    RxNormAttributeType::Frequency,
                    RxNormAttributeType::Duration,
                ]
                .into_iter()
                .filter_map(&attribute)
                .collect();
                let concept = e
                    .rx_norm_concepts
                    .iter()
                    .flatten()
                    .max_by(|a, b| a.score.unwrap_or(0.0).total_cmp(&b.score.unwrap_or(0.0)));
                Some(NlpEntity {
                    span,
                    code: concept.and_then(|c| c.code.clone()),
                    description: concept.and_then(|c| c.description.clone()),
                    score: e.score.unwrap_or(0.0),
                    excluded_by,
                    strength: attribute(RxNormAttributeType::Strength),
                    form: attribute(RxNormAttributeType::Form).map(|f| f.to_lowercase()),
                    sig: (!sig.is_empty()).then(|| sig.join(" ")),
                })
            })
            .collect())
    }
}
