"""Live moderation: classifiers (by default a model learned from pawhub's tele-vet corpus,
`moderation.learned_model`, trained by `pawhub moderation train`; Detoxify when configured), the
worker pool, thresholds and the `/moderation` namespace (flags and moderator actions are rows
kept by `domain.chat`). Never blocks the chat hot path.

Classification API: `moderation.factory.load_classifier` builds a `moderation.classifier.Classifier`
(`score_batch(texts) -> [{label: score}]`); `moderation.classifier.assess` applies
`moderation.thresholds.Thresholds` and attributes each result to the model and its version;
`moderation.pii.mask_card_numbers` masks card numbers before storage."""
