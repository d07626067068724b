"""Span, event and attribute names (Contract 1 and 2 in docs/architecture.md).

Names the OpenTelemetry semantic conventions define come from the conventions package, as
opentelemetry-instrumentation-openai-v2 does, so a rename upstream shows up here; the
``closedloop.*`` names are our own. One module so every producer and consumer (the
instrumentation, feedback, the store's SQL, the collector config) spells them the same way:
``tests/test_attribute_names.py`` holds the SQL and YAML files to it.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv._incubating.attributes import openai_attributes as openai
from opentelemetry.semconv._incubating.attributes import session_attributes as session
from opentelemetry.semconv._incubating.attributes import user_attributes as user
from opentelemetry.semconv.attributes import error_attributes as error
from opentelemetry.semconv.attributes import server_attributes as server

# --- OTel GenAI semantic conventions ------------------------------------------------------
OPERATION_NAME: Final = gen_ai.GEN_AI_OPERATION_NAME
PROVIDER_NAME: Final = gen_ai.GEN_AI_PROVIDER_NAME
REQUEST_MODEL: Final = gen_ai.GEN_AI_REQUEST_MODEL
REQUEST_TEMPERATURE: Final = gen_ai.GEN_AI_REQUEST_TEMPERATURE
REQUEST_TOP_P: Final = gen_ai.GEN_AI_REQUEST_TOP_P
REQUEST_MAX_TOKENS: Final = gen_ai.GEN_AI_REQUEST_MAX_TOKENS
REQUEST_SEED: Final = gen_ai.GEN_AI_REQUEST_SEED
REQUEST_STREAM: Final = gen_ai.GEN_AI_REQUEST_STREAM
REQUEST_FREQUENCY_PENALTY: Final = gen_ai.GEN_AI_REQUEST_FREQUENCY_PENALTY
REQUEST_PRESENCE_PENALTY: Final = gen_ai.GEN_AI_REQUEST_PRESENCE_PENALTY
REQUEST_STOP_SEQUENCES: Final = gen_ai.GEN_AI_REQUEST_STOP_SEQUENCES
REQUEST_CHOICE_COUNT: Final = gen_ai.GEN_AI_REQUEST_CHOICE_COUNT
REQUEST_ENCODING_FORMATS: Final = gen_ai.GEN_AI_REQUEST_ENCODING_FORMATS
OUTPUT_TYPE: Final = gen_ai.GEN_AI_OUTPUT_TYPE
RESPONSE_ID: Final = gen_ai.GEN_AI_RESPONSE_ID
RESPONSE_MODEL: Final = gen_ai.GEN_AI_RESPONSE_MODEL
RESPONSE_FINISH_REASONS: Final = gen_ai.GEN_AI_RESPONSE_FINISH_REASONS
RESPONSE_TIME_TO_FIRST_CHUNK: Final = gen_ai.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK
USAGE_INPUT_TOKENS: Final = gen_ai.GEN_AI_USAGE_INPUT_TOKENS
USAGE_OUTPUT_TOKENS: Final = gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS
USAGE_CACHE_READ_INPUT_TOKENS: Final = gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
USAGE_REASONING_OUTPUT_TOKENS: Final = gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
EMBEDDINGS_DIMENSION_COUNT: Final = gen_ai.GEN_AI_EMBEDDINGS_DIMENSION_COUNT
CONVERSATION_ID: Final = gen_ai.GEN_AI_CONVERSATION_ID
PROMPT_NAME: Final = gen_ai.GEN_AI_PROMPT_NAME
# Not (yet) in the conventions; named in their style, next to gen_ai.prompt.name.
PROMPT_VERSION: Final = "gen_ai.prompt.version"
SYSTEM_INSTRUCTIONS: Final = gen_ai.GEN_AI_SYSTEM_INSTRUCTIONS
INPUT_MESSAGES: Final = gen_ai.GEN_AI_INPUT_MESSAGES
OUTPUT_MESSAGES: Final = gen_ai.GEN_AI_OUTPUT_MESSAGES
SERVER_ADDRESS: Final = server.SERVER_ADDRESS
SERVER_PORT: Final = server.SERVER_PORT
ERROR_TYPE: Final = error.ERROR_TYPE
USER_HASH: Final = user.USER_HASH
SESSION_ID: Final = session.SESSION_ID

OPENAI_API_TYPE: Final = openai.OPENAI_API_TYPE
OPENAI_REQUEST_SERVICE_TIER: Final = openai.OPENAI_REQUEST_SERVICE_TIER
OPENAI_RESPONSE_SERVICE_TIER: Final = openai.OPENAI_RESPONSE_SERVICE_TIER
OPENAI_RESPONSE_SYSTEM_FINGERPRINT: Final = openai.OPENAI_RESPONSE_SYSTEM_FINGERPRINT

# --- Evaluation results (Contract 2's event on a feedback span) ---------------------------
# The event name is defined by the GenAI conventions' events, which the package does not
# generate constants for.
EVALUATION_RESULT_EVENT: Final = "gen_ai.evaluation.result"
EVALUATION_NAME: Final = gen_ai.GEN_AI_EVALUATION_NAME
EVALUATION_SCORE_VALUE: Final = gen_ai.GEN_AI_EVALUATION_SCORE_VALUE
EVALUATION_SCORE_LABEL: Final = gen_ai.GEN_AI_EVALUATION_SCORE_LABEL
EVALUATION_EXPLANATION: Final = gen_ai.GEN_AI_EVALUATION_EXPLANATION

# --- closedloop's own: LLM call spans (Contract 1) ----------------------------------------
COST_USD: Final = "closedloop.cost.usd"
LATENCY_MS: Final = "closedloop.latency.ms"
EXPERIMENT: Final = "closedloop.experiment"
VARIANT: Final = "closedloop.variant"
SHADOW: Final = "closedloop.shadow"
USER_INTERACTION: Final = "closedloop.user.interaction"
USER_NEW: Final = "closedloop.user.new"
TURN: Final = "closedloop.turn"
TOOLS: Final = "closedloop.tools"
TOOLS_DEFINED: Final = "closedloop.tools.defined"
REQUEST_ID: Final = "closedloop.request.id"
PROVIDER_REQUEST_ID: Final = "closedloop.provider.request_id"
REDACTIONS: Final = "closedloop.redactions"
CONTENT_TRUNCATED: Final = "closedloop.content.truncated"

# --- closedloop's own: feedback spans (Contract 2) ----------------------------------------
# The span name, not an attribute: a span is feedback if and only if it has this name.
FEEDBACK_SPAN_NAME: Final = "closedloop.feedback"
FEEDBACK_KIND: Final = "closedloop.feedback.kind"
FEEDBACK_NAME: Final = "closedloop.feedback.name"
FEEDBACK_VALUE: Final = "closedloop.feedback.value"
FEEDBACK_LABEL: Final = "closedloop.feedback.label"
FEEDBACK_SOURCE: Final = "closedloop.feedback.source"
