package main

func opsCommands() []command {
	return nil
}
