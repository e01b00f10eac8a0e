// Tree-walking evaluator of a parsed template: one Interpreter per render.
#pragma once
#include <string>

#include "chat/jinja_ast.h"
#include "contrail/chat/chat_template.h"

namespace contrail::jinja {

// The output of a render: the text, and which bytes of it came from untrusted values.
struct Rendered {
  std::string text;
  Taint untrusted;
};

// Renders `program` with the variables of `context` (a dict). Errors: TemplateException from
// raise_exception; Error "chat template line L:C: ..." for failing operations and exceeded
// limits.
Rendered render(const Program& program, const Value& context, const ChatTemplateLimits& limits);

}  // namespace contrail::jinja
