# The admin key and URL that `leadstream dev` printed, and where it writes emails:
K=${K:-paste-the-admin-key-here}; H=${H:-http://127.0.0.1:8080}; MAIL=${MAIL:-leadstream-dev/mail}
J='content-type: application/json'

# 1. A ruleset: points per event type.
curl -fsS -XPOST $H/rulesets -H "Authorization: Bearer $K" -H "$J" -d '{"name": "Engagement",
  "rules": [{"event_type": "pricing_page_view", "points": 10},
            {"event_type": "whitepaper_download", "points": 20},
            {"event_type": "demo_request", "points": 50}]}'; echo

# 2. A milestone trigger (seed 003): webhook to the built-in receiver, and an email.
curl -fsS -XPOST $H/triggers -H "Authorization: Bearer $K" -H "$J" -d '{"name": "Hot Lead Alert",
  "event_type": "demo_request", "score_threshold": 75,
  "webhook_url": "'"$H"'/dev/webhooks/hot-lead", "emails": ["sales@example.com"],
  "email_subject": "Hot Lead Alert", "email_message": "A lead just crossed 75 points!"}'; echo

# 3. A sequence trigger (seed 004): three steps within 7 days, in order.
curl -fsS -XPOST $H/sequences -H "Authorization: Bearer $K" -H "$J" -d '{
  "name": "Buying Intent Sequence",
  "event_types": ["pricing_page_view", "whitepaper_download", "demo_request"],
  "window_seconds": 604800, "window_unit": "7 days", "ordered": true,
  "webhook_url": "'"$H"'/dev/webhooks/buying-intent", "emails": ["sales@example.com"]}'; echo

# 4. Three events for one lead, one per ingest API.
# Seed 000 (LeadVibe): POST /ingest.
curl -fsS -XPOST $H/ingest -H "Authorization: Bearer $K" -H "$J" -d '{"alias_kind": "email",
  "alias": "user@example.com", "event_type": "pricing_page_view",
  "metadata": {"path": "/pricing", "utm_source": "google"}}'; echo
# Seed 001 (Lariba): POST /v1/events/ingest with an Idempotency-Key (the alias is an extension).
curl -fsS -XPOST $H/v1/events/ingest -H "X-API-Key: $K" -H "$J" \
  -H "Idempotency-Key: whitepaper-001" -d '{"event_id": "evt_whitepaper_001",
  "event_type": "whitepaper_download", "source_id": "src_web", "environment": "production",
  "alias_kind": "email", "alias": "user@example.com",
  "payload": {"asset": "pricing-guide.pdf"}}'; echo
# Seed 002 (ResultFly CDP): register the event type, then POST /v1/cdp/events.
curl -fsS -XPOST $H/v1/cdp/event-types -H "Authorization: Bearer $K" -H "$J" \
  -d '{"name": "demo_request", "properties": {"product": "string"}}'; echo
curl -fsS -XPOST $H/v1/cdp/events -H "Authorization: Bearer $K" -H "$J" -d '{
  "source": "brand.web", "externalEventId": "demo_0001", "eventType": "demo_request",
  "identity": {"email": "user@example.com"}, "properties": {"product": "enterprise"}}'; echo

# 5. Both triggers fired: the receiver got two signed webhooks (this waits for them) ...
curl -fsS "$H/dev/webhooks?at_least=2"; echo
# ... the lead scores 80, explained rule by rule ...
curl -fsS "$H/leads?alias_kind=email&alias=user@example.com" -H "Authorization: Bearer $K"; echo
# ... and the emails are .eml files.
sleep 1; ls -l "$MAIL"
