// The built-in behaviour of chat templates: attribute and item access (with Python's str
// and dict methods), filters, tests, global functions, iteration and operators, all with
// Jinja2 / Python semantics. Errors are thrown as ValueError; the interpreter adds where.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "text/jinja_value.h"

namespace dsinfer::jinja {

Value get_attribute(const Value& object, const std::string& name);  // object.name
// Python's getattr() alone, without Jinja's fallback to items (the `attr` filter).
Value python_getattr(const Value& object, const std::string& name);
Value get_item(const Value& object, const Value& key);              // object[key]
Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step);
Value call_value(const Value& callee, const CallArgs& args);

// The values a for loop visits (a dict gives its keys, a string its characters).
std::vector<Value> iterate(const Value& v);
bool contains(const Value& container, const Value& item);  // item in container
Value binary_operator(const std::string& op, const Value& a, const Value& b);
Value unary_minus(const Value& v, bool negate);

bool has_filter(const std::string& name);
bool has_test(const std::string& name);
Value apply_filter(const std::string& name, const Value& value, const CallArgs& args);
bool apply_test(const std::string& name, const Value& value, const CallArgs& args);

// range, namespace, dict, raise_exception and strftime_now, as transformers provides them.
std::map<std::string, Value> global_functions();

}  // namespace dsinfer::jinja
