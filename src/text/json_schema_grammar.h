// The grammar of the JSON texts a JSON Schema accepts, for structured outputs (OpenAI's
// response_format json_schema, vLLM's guided_json), and of any JSON object (JSON mode).
// Supported: type (one or a list), properties with required (emitted in the schema's order, no
// other keys), additionalProperties (a schema for the values of an object without properties),
// items with minItems / maxItems, minLength / maxLength, enum and const (with a type: the values
// of that type), anyOf / oneOf (oneOf as anyOf: overlapping branches are not told apart), a
// one-element allOf, $ref within the document ($defs, definitions; recursion included), and true.
// Annotations (title, description, default, examples, format, ...) are ignored; any other keyword
// (pattern, minimum, uniqueItems, ...), or $ref / enum / anyOf beside keywords they would leave
// unenforced, is refused, naming it and where it is. A schema that refers to itself before any
// value (a left-recursive grammar) is refused too.
// Whitespace between tokens is allowed up to 20 bytes in a row, so a model cannot pad forever.
#pragma once
#include <nlohmann/json.hpp>

#include "text/grammar.h"

namespace dsinfer {

// Throws dsinfer::Error naming the unsupported keyword or malformed part and its JSON pointer.
// Ordered JSON: properties come in the order the schema lists them.
Grammar json_schema_grammar(const nlohmann::ordered_json& schema);
// Any JSON object.
Grammar json_object_grammar();
// The schema's rules added to `g` (for a grammar that holds JSON among other text); returns the
// rule of its texts. Throws as json_schema_grammar.
int add_json_schema(Grammar& g, const nlohmann::ordered_json& schema);

}  // namespace dsinfer
