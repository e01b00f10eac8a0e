// Tree-walking evaluator of a parsed template: one Interpreter per render.
#pragma once
#include <string>

#include "chat/jinja_ast.h"
#include "contrail/chat/chat_template.h"

namespace contrail::jinja {

// Renders `program` with the variables of `context` (a dict). Errors: TemplateException from
// raise_exception; Error "chat template line L:C: ..." for failing operations and exceeded
// limits.
std::string render(const Program& program, const Value& context, const ChatTemplateLimits& limits);

}  // namespace contrail::jinja
